"""One schema.org Product / ProductGroup node (from JSON-LD or microdata) as ProductData.

The node is already in canonical shape (see jsonld.canonicalize). A ProductGroup's
`hasVariant` products become `variants` (own price, list price, stock, image, SKU/GTIN,
options); the product's price is the cheapest buyable variant's, its stock "in stock" when any
variant is, its images the group's followed by the variants'. `sources` names `source` for
every field that got a value.
"""

from __future__ import annotations

from catalog.services import VariantData
from pipeline.platforms.base import ProductData, absolute_url, plain_text, unique
from pipeline.platforms.extract.microdata import PLACEHOLDER
from pipeline.platforms.extract.offers import (
    OfferValues,
    as_list,
    best_availability,
    first,
    flatten_offers,
    summarize,
)
from pipeline.platforms.identifiers import clean_identifier, normalize_gtin

GTIN_KEYS = ("gtin13", "gtin", "gtin12", "gtin14", "gtin8", "isbn")
OPTION_KEYS = ("color", "size", "material", "pattern")
MAX_IMAGES = 20
MAX_VARIANTS = 250


def text_of(value: object, limit: int = 300) -> str:
    value = first(value)
    if isinstance(value, dict):
        value = value.get("name") or value.get("@value") or ""
        value = first(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    return plain_text(value, limit) if isinstance(value, str) else ""


def images_of(value: object, base: str) -> list[str]:
    urls = []
    for item in as_list(value)[:MAX_IMAGES]:
        if isinstance(item, dict):
            item = first(item.get("contentUrl")) or first(item.get("url")) or ""
        url = absolute_url(first(item), base)
        if url and not PLACEHOLDER.search(url.rsplit("/", 1)[-1]):
            urls.append(url)
    return unique(urls)


def gtin_of(node: dict) -> str:
    for key in GTIN_KEYS:
        for value in as_list(node.get(key)):
            if gtin := normalize_gtin(value):
                return gtin
    for ident in as_list(node.get("identifier")) + as_list(node.get("productID")):
        if isinstance(ident, dict):
            ident = first(ident.get("value"))
        if isinstance(ident, str) and (gtin := normalize_gtin(ident.rsplit(":", 1)[-1])):
            return gtin
    return ""


def _category(value: object) -> str:
    if isinstance(value, list):
        return " > ".join(t for v in value if (t := text_of(v)))
    return text_of(value)


def options_of(node: dict) -> dict[str, str]:
    options = {k.capitalize(): t for k in OPTION_KEYS if (t := text_of(node.get(k), 100))}
    for prop in as_list(node.get("additionalProperty"))[:10]:
        name = text_of(prop.get("name"), 100) if isinstance(prop, dict) else ""
        if name and (value := text_of(prop.get("value"), 100)):
            options.setdefault(name, value)
    return options


def variant_from_node(node: dict, page_url: str, country: str, currency: str) -> VariantData:
    offers = flatten_offers(node.get("offers"), country, currency)
    offer = summarize(offers)
    first_offer = offers[0] if offers else OfferValues(None, None, "", "unknown")
    sku = clean_identifier(first(node.get("sku")) or first_offer.sku)
    url = absolute_url(first(node.get("url")) or first_offer.url, page_url)
    return VariantData(
        external_id=sku or url or str(node.get("@id") or ""),
        title=text_of(node.get("name"), 500),
        options=options_of(node),
        sku=sku,
        gtin=gtin_of(node) or gtin_of(first_offer.node or {}),
        mpn=clean_identifier(first(node.get("mpn")) or first_offer.mpn),
        price=offer.price,
        list_price=offer.list_price,
        availability=offer.availability,
        image_url=next(iter(images_of(node.get("image"), page_url)), ""),
        url=url,
    )


def offer_variants(offers: list[OfferValues], page_url: str) -> list[VariantData]:
    """Offers that carry their own SKU or URL (one per size or colour) as variants."""
    own = [o for o in offers if o.node is not None and (o.sku or o.url)]
    if len({(str(o.sku), str(o.url)) for o in own}) < 2:
        return []
    variants = []
    for o in own[:MAX_VARIANTS]:
        sku, url = clean_identifier(o.sku), absolute_url(o.url, page_url)
        variants.append(
            VariantData(
                external_id=sku or url,
                options=options_of(o.node or {}),
                sku=sku,
                gtin=gtin_of(o.node or {}),
                mpn=clean_identifier(o.mpn),
                price=o.price,
                list_price=o.list_price,
                availability=o.availability,
                url=url,
            )
        )
    return variants


def selected_variant(variants: list[VariantData], sku: str, page_url: str) -> VariantData:
    """The variant a shopper sees first: the page's SKU or URL, else the first in stock."""
    by_sku = [v for v in variants if sku and v.sku == sku]
    by_url = [v for v in variants if v.url and v.url == page_url]
    buyable = [v for v in variants if v.availability == "in_stock"]
    return (by_sku or by_url or buyable or variants or [VariantData(external_id="")])[0]


def _variant_summary(variants: list[VariantData], offer: OfferValues) -> OfferValues:
    priced = [v for v in variants if v.price is not None]
    buyable = [v for v in priced if v.availability in ("in_stock", "preorder")] or priced
    availability = best_availability([v.availability for v in variants] + [offer.availability])
    if offer.price is not None and not buyable:
        return OfferValues(offer.price, offer.list_price, offer.currency, availability)
    if not buyable:
        return OfferValues(None, None, offer.currency, availability)
    cheapest = min(buyable, key=lambda v: v.price)
    return OfferValues(cheapest.price, cheapest.list_price, offer.currency, availability)


def _own_offer(node: dict) -> dict | None:
    """A product that states price and stock itself, without an Offer (a common mistake)."""
    keys = ("price", "lowPrice", "priceCurrency", "availability", "priceSpecification")
    own = {k: node[k] for k in keys if k in node}
    return own or None


def product_from_node(
    node: dict, page_url: str, external_id: str, source: str, country: str = ""
) -> ProductData:
    """ProductData for one node; variants from `hasVariant` (resolved nodes) or from offers
    that carry their own SKUs. Identifiers missing on the node come from the selected variant.
    """
    offers = flatten_offers(node.get("offers") or _own_offer(node), country)
    offer = summarize(offers)
    variant_nodes = [v for v in as_list(node.get("hasVariant")) if isinstance(v, dict)]
    variants = [
        variant_from_node(v, page_url, country, offer.currency)
        for v in variant_nodes[:MAX_VARIANTS]
    ]
    if variants:
        offer = _variant_summary(variants, offer)
    else:
        variants = offer_variants(offers, page_url)
    if not offer.currency:
        found = offers + [o for v in variant_nodes for o in flatten_offers(v.get("offers"))]
        offer.currency = next((o.currency for o in found if o.currency), "")
    single = offers[0] if len(offers) == 1 else OfferValues(None, None, "", "unknown")
    sku = clean_identifier(first(node.get("sku")) or single.sku)
    chosen = selected_variant(variants, sku, page_url)
    images = images_of(node.get("image"), page_url) + [v.image_url for v in variants]
    product = ProductData(
        external_id=external_id,
        url=absolute_url(first(node.get("url")), page_url) or page_url,
        title=text_of(node.get("name"), 500),
        description=plain_text(first(node.get("description"))),
        brand=text_of(node.get("brand")) or text_of(node.get("manufacturer")),
        category=_category(node.get("category")),
        price=offer.price,
        list_price=offer.list_price,
        currency=offer.currency,
        availability=offer.availability,
        image_urls=unique(images)[:MAX_IMAGES],
        sku=sku or chosen.sku,
        gtin=gtin_of(node) or gtin_of(single.node or {}) or chosen.gtin,
        mpn=clean_identifier(first(node.get("mpn")) or single.mpn) or chosen.mpn,
        variants=variants,
    )
    mark_sources(product, source)
    return product


# The fields a reading supplies, each with the source it came from (ProductData.sources).
SOURCE_FIELDS = [
    "title",
    "description",
    "brand",
    "category",
    "price",
    "list_price",
    "currency",
    "availability",
    "image_urls",
    "sku",
    "gtin",
    "mpn",
    "variants",
    "tags",
]


def has_value(value: object) -> bool:
    """A field a reading filled: not None, "", [] or availability "unknown"."""
    return value not in (None, "", [], "unknown")


def mark_sources(product: ProductData, source: str) -> None:
    """Record `source` for every field that has a value and no source yet."""
    for name in SOURCE_FIELDS:
        if has_value(getattr(product, name)):
            product.sources.setdefault(name, source)
