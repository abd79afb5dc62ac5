"""schema.org offers of one product node, flattened into (price, list price, currency, stock).

Understood: an Offer, a list of offers, an AggregateOffer (lowPrice) with or without its own
`offers`, an Offer inside an Offer (microdata), priceSpecification lists where a
ListPrice/StrikethroughPrice entry is the struck-through regular price and an entry with a
referenceQuantity (per kg, per litre) a base price that is skipped, and repeated
availability values. Amounts are parsed with the offer's currency, so minor units are right.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pipeline.platforms.base import normalize_availability, normalize_currency, parse_price
from pipeline.platforms.prices import currency_of

AVAIL_RANK = {"in_stock": 0, "preorder": 1, "out_of_stock": 2, "unknown": 3}
LIST_PRICE_TYPES = ("listprice", "strikethroughprice", "msrp", "srp", "regularprice")
# UN/CEFACT codes for "one piece": a spec per piece is the price, per kilogram or litre is not.
COUNT_UNITS = {"c62", "h87", "ea", "pce", "piece", "unit"}
MAX_OFFERS = 200


@dataclass
class OfferValues:
    price: Decimal | None
    list_price: Decimal | None
    currency: str
    availability: str
    sku: object = None
    mpn: object = None
    url: object = None
    node: dict | None = None  # the offer itself, for identifiers and options


def as_list(value: object) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def first(value: object) -> object:
    """The first non-empty item of a repeated value (microdata repeats, JSON-LD lists)."""
    for item in as_list(value):
        if item not in (None, "", [], {}):
            return item
    return None


def best_availability(values: list[str]) -> str:
    """ "In stock" when any is, else pre-order, else out of stock, else unknown."""
    return min(values, key=AVAIL_RANK.__getitem__, default="unknown")


def availability_of(value: object) -> str:
    """A (possibly repeated) availability value; the first that reads as a known state."""
    states = [normalize_availability(v) for v in as_list(value) if not isinstance(v, dict)]
    return next((s for s in states if s != "unknown"), "unknown")


def _currency(node: dict, country: str, fallback: str = "") -> str:
    return normalize_currency(first(node.get("priceCurrency")), country) or fallback


def is_unit_price(spec: dict) -> bool:
    """A spec with a reference quantity other than one piece ("9.98 per 1 KGM") is a base
    price (Grundpreis), never what the pack costs."""
    quantity = first(spec.get("referenceQuantity"))
    if quantity in (None, ""):
        return False
    if not isinstance(quantity, dict):
        return True
    unit = str(first(quantity.get("unitCode")) or first(quantity.get("unitText")) or "")
    value = str(first(quantity.get("value")) or "1").strip()
    return unit.strip().lower() not in COUNT_UNITS or value not in ("1", "1.0")


def _spec_prices(offer: dict, currency: str, country: str) -> tuple[Decimal | None, ...]:
    """(selling, list) prices and currency from a priceSpecification list."""
    selling = listed = None
    for spec in as_list(offer.get("priceSpecification")):
        if not isinstance(spec, dict) or is_unit_price(spec):
            continue
        cur = _currency(spec, country, currency)
        amount = parse_price(first(spec.get("price")), cur)
        kind = str(first(spec.get("priceType")) or "").rsplit("/", 1)[-1].lower()
        if amount is None:
            continue
        if any(t in kind for t in LIST_PRICE_TYPES):
            listed = listed or amount
        elif selling is None:
            selling, currency = amount, cur
    return selling, listed, currency


def _one_offer(offer: dict, country: str, inherited: str) -> OfferValues:
    raw = first(offer.get("price"))
    if raw is None:
        raw = first(offer.get("lowPrice"))
    currency = _currency(offer, country, inherited)
    if not currency and isinstance(raw, str):
        currency = currency_of(raw, country)  # "price": "£24.99" with no priceCurrency
    price = parse_price(raw, currency)
    spec_price, list_price, spec_currency = _spec_prices(offer, currency, country)
    if price is None and spec_price is not None:
        price, currency = spec_price, spec_currency
    if list_price is not None and (price is None or list_price <= price):
        list_price = None
    return OfferValues(
        price,
        list_price,
        currency,
        availability_of(offer.get("availability")),
        first(offer.get("sku")),
        first(offer.get("mpn")),
        first(offer.get("url")),
        offer,
    )


def flatten_offers(
    value: object, country: str = "", inherited: str = "", depth: int = 0
) -> list[OfferValues]:
    """Every offer under `value`, nested ones (AggregateOffer.offers, Offer in Offer) included."""
    found: list[OfferValues] = []
    for offer in as_list(value)[:MAX_OFFERS]:
        if not isinstance(offer, dict) or depth > 3:
            continue
        values = _one_offer(offer, country, inherited)
        nested = flatten_offers(offer.get("offers"), country, values.currency, depth + 1)
        if nested and values.availability == "unknown":
            values.availability = best_availability([n.availability for n in nested])
        # An AggregateOffer's lowPrice may be a sold-out offer's: its own offers say more.
        if not any(n.price is not None for n in nested):
            found.append(values)
        found += nested
    return found


def summarize(offers: list[OfferValues]) -> OfferValues:
    """One selling price for the product: the cheapest offer one can buy (else cheapest).

    Offers in several currencies (one per market) are not compared: the first one's wins.
    """
    availability = best_availability([o.availability for o in offers])
    priced = [o for o in offers if o.price is not None]
    main_currency = next((o.currency for o in priced if o.currency), "")
    priced = [o for o in priced if o.currency in (main_currency, "")]
    buyable = [o for o in priced if o.availability in ("in_stock", "preorder")] or priced
    if not buyable:
        currency = next((o.currency for o in offers if o.currency), "")
        return OfferValues(None, None, currency, availability)
    cheapest = min(buyable, key=lambda o: o.price)
    return OfferValues(cheapest.price, cheapest.list_price, cheapest.currency, availability)
