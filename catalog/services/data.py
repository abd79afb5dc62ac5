"""What the pipeline hands the catalogue for one product: `ProductData` with its `VariantData`,
their content hash (the upsert's "changed?" test) and the price/availability summary stored on
the product row."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal

from catalog.models import (
    Product,
    amount_text,
    combined_availability,
)

PRODUCT_FIELDS = (
    "url",
    "title",
    "description",
    "brand",
    "category",
    "tags",
    "price",
    "currency",
    "availability",
)
# Written as the pipeline gives them (price, availability and the range are derived, see
# _product_row); all of them, the variants and the sources are covered by the content hash.
IDENTITY_FIELDS = ("sku", "gtin", "mpn")
VARIANT_FIELDS = (
    "title",
    "options",
    "sku",
    "gtin",
    "mpn",
    "price",
    "list_price",
    "availability",
    "image_url",
    "url",
)
MAX_VARIANTS = 250  # Shopify's old cap; a product listing thousands is a catalogue, not a product


@dataclass
class VariantData:
    """One purchasable variant (a colour, a size) of a product, as the store lists it.

    Prices are Decimal selling prices; `list_price` is the regular price struck through when the
    variant is on sale (None otherwise). `options` maps option names to values
    ({"Colour": "Red", "Size": "M"}); `url` is the variant's own link (`?variant=…`) or "".
    """

    external_id: str
    title: str = ""
    options: dict[str, str] = field(default_factory=dict)
    sku: str = ""
    gtin: str = ""
    mpn: str = ""
    price: Decimal | None = None
    list_price: Decimal | None = None
    availability: str = "unknown"
    image_url: str = ""
    url: str = ""


@dataclass
class ProductData:
    """One product as a store lists it, already normalised by the pipeline.

    Issue 9 contract: `sku`/`gtin`/`mpn` identify the product (gtin: digits only, check digit
    valid, GTIN-8 kept, UPC-A/EAN-13 as 13 digits, GTIN-14 as 14); `price` is the selling price
    (the lowest variant price when variants differ), `list_price` the regular price when on sale;
    `variants` the purchasable variants; `sources` maps a field name ("price", "currency",
    "availability", "title", "image_urls", "sku", "gtin", …) to where it was read:
    "api", "json-ld", "microdata", "opengraph", "meta" or "visible-text".
    """

    external_id: str
    url: str
    title: str
    description: str = ""
    brand: str = ""
    category: str = ""
    tags: list[str] = field(default_factory=list)
    price: Decimal | None = None
    currency: str = ""
    availability: str = Product.Availability.UNKNOWN
    image_urls: list[str] = field(default_factory=list)
    sku: str = ""
    gtin: str = ""
    mpn: str = ""
    list_price: Decimal | None = None
    variants: list[VariantData] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def content_hash(self) -> str:
        """Changes when anything stored from this item would change; equal data, equal hash."""
        data = {name: getattr(self, name) for name in (*PRODUCT_FIELDS, "image_urls")}
        data["price"] = _money(self.price)
        if self.sku or self.gtin or self.mpn or self.list_price is not None:
            data |= {name: getattr(self, name) for name in IDENTITY_FIELDS}
            data["list_price"] = _money(self.list_price)
        if self.variants:
            data["variants"] = [
                {name: _money(v) if isinstance(v, Decimal) else v for name, v in vars(var).items()}
                for var in self.variants
            ]
        if self.sources:
            data["sources"] = self.sources
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _money(value: Decimal | None) -> str | None:
    # Two decimals as hashes always had (stored hashes stay valid); three when a currency has
    # them (KWD 12.345), so a change in the third decimal is a change.
    return amount_text(value)


def product_summary(item: ProductData) -> dict:
    """Price, price range, list price and availability of an item, variants considered.

    The product's price is its lowest variant price (the pipeline's, when it gives one);
    `price_max` the highest when variants differ; "in stock" when any variant is
    (`catalog.models.combined_availability`); the list price of the cheapest variant on sale
    when the item states none itself.
    """
    priced = [v for v in item.variants if v.price is not None]
    price = item.price
    price_max = None
    list_price = item.list_price
    if priced:
        cheapest = min(priced, key=lambda v: v.price)
        price = cheapest.price if price is None else price
        highest = max(v.price for v in priced)
        price_max = highest if highest > price else None
        if list_price is None and cheapest.price == price and cheapest.list_price is not None:
            list_price = cheapest.list_price
    if list_price is not None and (price is None or list_price <= price):
        list_price = None  # a "was" price that is not higher is no sale
    availability = item.availability
    known = [v.availability for v in item.variants if v.availability != "unknown"]
    if known:
        availability = combined_availability(known)
    return {
        "price": price,
        "price_max": price_max,
        "list_price": list_price,
        "availability": availability,
    }
