"""The product object Shopify themes embed in the page (`<script type="application/json"
data-product-json>`, `id="ProductJson-…"`): variants with SKU, barcode and compare-at price.

Liquid's `{{ product | json }}` writes money as integer hundredths of the currency unit
(12.99 → 1299, whatever the currency); products.json-style decimal strings are kept as
they are. The object is read with the Shopify API parser, so fields carry the source "api".
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from lxml import etree

from catalog.services import ProductData

MAX_SCRIPT = 2_000_000


def _cents(value: object) -> object:
    return f"{value / 100:.2f}" if isinstance(value, int) and not isinstance(value, bool) else value


def _product_objects(tree: etree._Element) -> list[dict]:
    found = []
    for script in tree.xpath(
        '//script[contains(@type, "json") and not(contains(@type, "ld+json"))]'
    ):
        text = (script.text or "").strip()
        if not text.startswith("{") or len(text) > MAX_SCRIPT:
            continue
        try:
            data = json.loads(text)
        except ValueError:
            continue
        data = data.get("product", data) if isinstance(data, dict) else None
        variants = data.get("variants") if isinstance(data, dict) else None
        shopify_like = isinstance(data, dict) and data.get("handle") and data.get("title")
        if shopify_like and isinstance(variants, list) and variants:
            found.append(data)
    return found


def _as_api_item(data: dict) -> dict:
    item = dict(data)
    item["variants"] = [
        {
            **v,
            "price": _cents(v.get("price")),
            "compare_at_price": _cents(v.get("compare_at_price")),
        }
        for v in data["variants"]
        if isinstance(v, dict)
    ]
    images = data.get("images") or []
    item["images"] = [
        {"src": i, "position": n} if isinstance(i, str) else i for n, i in enumerate(images, 1)
    ]
    item["body_html"] = data.get("body_html") or data.get("description") or ""
    return item


def product_from_embedded(tree: etree._Element, page_url: str, external_id: str):
    """ProductData from the first embedded Shopify product object, or None."""
    from pipeline.platforms.shopify import parse_product  # shopify imports this package

    objects = _product_objects(tree)
    if not objects:
        return None
    parts = urlsplit(page_url)
    product: ProductData = parse_product(
        _as_api_item(objects[0]), f"{parts.scheme}://{parts.netloc}", ""
    )
    product.external_id = external_id
    product.url = page_url
    return product
