"""Several readings of one product (JSON-LD, microdata, meta tags, visible text) made into one.

The first reading is kept as it is; later ones only fill fields it left empty, and `sources`
says where each field came from. A price moves with its currency: a price in another currency
than the one already read is not mixed in; a list price is only taken for the same selling
price. Visible text never overrides markup.
"""

from __future__ import annotations

from pipeline.platforms.base import ProductData
from pipeline.platforms.extract.schema import SOURCE_FIELDS, has_value

# Filled field by field; the price, list price and currency move together (_fill_price) and tags
# come from the first reading only.
FILLABLE = tuple(
    name for name in SOURCE_FIELDS if name not in ("price", "list_price", "currency", "tags")
)


def _fill_price(main: ProductData, other: ProductData) -> None:
    if main.price is None and other.price is not None:
        if main.currency and other.currency and main.currency != other.currency:
            return
        main.price, main.list_price = other.price, other.list_price
        main.sources["price"] = other.sources.get("price", "")
        if other.list_price is not None:
            main.sources["list_price"] = other.sources.get("list_price", "")
        if not main.currency and other.currency:
            main.currency = other.currency
            main.sources["currency"] = other.sources.get("currency", "")
        return
    same_price = main.price is not None and main.price == other.price
    agrees = main.price is None or other.price is None or same_price
    if not main.currency and other.currency and agrees:
        main.currency = other.currency
        main.sources["currency"] = other.sources.get("currency", "")
    if same_price and main.list_price is None and other.list_price is not None:
        main.list_price = other.list_price
        main.sources["list_price"] = other.sources.get("list_price", "")


def fill_gaps(main: ProductData, other: ProductData) -> ProductData:
    """`main` with its empty fields taken from `other` (sources recorded per field)."""
    for name in FILLABLE:
        if not has_value(getattr(main, name)) and has_value(getattr(other, name)):
            setattr(main, name, getattr(other, name))
            main.sources[name] = other.sources.get(name, "")
    _fill_price(main, other)
    return main
