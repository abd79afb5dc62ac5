"""OpenGraph (og:*, product:*) and other <meta> product tags as ProductData.

Reads the standard Open Graph product namespace (product:price:amount, product:sale_price:*,
product:availability, product:retailer_item_id, product:brand, product:ean/upc/gtin…) and the
common non-standard tags (og:price:amount, og:price, og:availability, og:brand). Every og:image
is kept, in page order. Field sources are "opengraph" for og:/product: tags, "meta" otherwise.
"""

from __future__ import annotations

from collections import defaultdict

from lxml import etree

from pipeline.platforms.base import (
    ProductData,
    absolute_url,
    normalize_availability,
    normalize_currency,
    parse_price,
    plain_text,
    unique,
)
from pipeline.platforms.extract.microdata import NOT_PHOTO
from pipeline.platforms.identifiers import clean_identifier, normalize_gtin

PRICE_KEYS = ("product:price:amount", "og:price:amount", "og:price", "product:price")
CURRENCY_KEYS = ("product:price:currency", "og:price:currency", "product:currency")
AVAILABILITY_KEYS = ("product:availability", "og:availability", "availability")
SKU_KEYS = ("product:retailer_item_id", "product:sku", "og:sku", "sku")
GTIN_KEYS = ("product:gtin", "product:ean", "product:upc", "product:isbn", "gtin", "ean")
BRAND_KEYS = ("product:brand", "og:brand", "brand")


def meta_tags(tree: etree._Element) -> dict[str, list[str]]:
    """All <meta property|name> values by lower-case key, in page order."""
    found: dict[str, list[str]] = defaultdict(list)
    for el in tree.xpath("//meta[@property or @name]"):
        key = (el.get("property") or el.get("name") or "").strip().lower()
        value = (el.get("content") or "").strip()
        if key and value:
            found[key].append(value)
    return found


def _without_site_name(meta: dict[str, list[str]]) -> str:
    """og:title without a trailing " | Shop name" when og:site_name names the shop."""
    title = plain_text(_get(meta, ("og:title",))[0], 500)
    site = plain_text(_get(meta, ("og:site_name",))[0], 200)
    for sep in (" | ", " - ", " \u2013 ", " \u2014 ", " :: ", " \u00b7 "):
        if site and title.endswith(f"{sep}{site}"):
            return title[: -len(sep) - len(site)].strip()
    return title


def meta_kind(tree: etree._Element) -> str:
    """The page's og:type ("product", "article", …), lower-case, namespace dropped."""
    values = tree.xpath('//meta[@property="og:type" or @name="og:type"]/@content')
    return str(values[0]).strip().lower().rsplit(".", 1)[0].rsplit(":", 1)[-1] if values else ""


def _get(meta: dict[str, list[str]], keys: tuple[str, ...]) -> tuple[str, str]:
    """(value, source) of the first key present."""
    for key in keys:
        if meta.get(key):
            return meta[key][0], "opengraph" if key.startswith(("og:", "product:")) else "meta"
    return "", ""


def _prices(meta: dict[str, list[str]], product: ProductData, country: str) -> None:
    raw_currency, cur_source = _get(meta, CURRENCY_KEYS)
    sale_currency, _ = _get(meta, ("product:sale_price:currency",))
    currency = normalize_currency(raw_currency or sale_currency, country)
    regular, source = _get(meta, PRICE_KEYS)
    sale, sale_source = _get(meta, ("product:sale_price:amount",))
    price = parse_price(regular, currency)
    sale_price = parse_price(sale, currency)
    if sale_price is not None and (price is None or sale_price < price):
        price, product.list_price, source = sale_price, price, sale_source
    original = parse_price(_get(meta, ("product:original_price:amount",))[0], currency)
    if original is not None and price is not None and original > price:
        product.list_price = original
    product.price, product.currency = price, currency
    if price is not None:
        product.sources["price"] = source
        if product.list_price is not None:
            product.sources["list_price"] = source
    if currency:
        product.sources["currency"] = cur_source or "opengraph"


def product_from_meta(tree: etree._Element, page_url: str, external_id: str, country: str = ""):
    """(ProductData, is_product_page): the meta tags' product and whether they claim one."""
    meta = meta_tags(tree)
    product = ProductData(external_id=external_id, url=page_url, title="")
    fields = {
        "title": _without_site_name(meta),
        "description": plain_text(_get(meta, ("og:description",))[0]),
        "brand": plain_text(_get(meta, BRAND_KEYS)[0], 200),
        "sku": clean_identifier(_get(meta, SKU_KEYS)[0]),
        "gtin": normalize_gtin(_get(meta, GTIN_KEYS)[0]),
        "mpn": clean_identifier(_get(meta, ("product:mfr_part_no", "mpn"))[0]),
        "availability": normalize_availability(_get(meta, AVAILABILITY_KEYS)[0]),
    }
    sources = {
        "title": "opengraph",
        "description": "opengraph",
        "brand": _get(meta, BRAND_KEYS)[1],
        "sku": _get(meta, SKU_KEYS)[1],
        "gtin": _get(meta, GTIN_KEYS)[1],
        "mpn": _get(meta, ("product:mfr_part_no", "mpn"))[1],
        "availability": _get(meta, AVAILABILITY_KEYS)[1],
    }
    for name, value in fields.items():
        if value and value != "unknown":
            setattr(product, name, value)
            product.sources[name] = sources[name]
    images = [*meta.get("og:image", []), *meta.get("og:image:url", [])]
    images = [u for u in images if not NOT_PHOTO.search(u.rsplit("/", 1)[-1])]
    product.image_urls = unique(absolute_url(u, page_url) for u in images)[:20]
    if product.image_urls:
        product.sources["image_urls"] = "opengraph"
    _prices(meta, product, country)
    og_type = _get(meta, ("og:type",))[0].lower()
    claims = "product" in og_type or product.price is not None
    return product, claims
