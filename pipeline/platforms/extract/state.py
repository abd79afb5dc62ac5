"""The product in a JavaScript app's state: `__NEXT_DATA__`, `window.__INITIAL_STATE__ = {…}`.

Headless shops (Next.js, Hydrogen, Vue/React storefronts) may render the product page in the
browser only, so the server's HTML holds the product in a JSON state blob and nothing else.
Two shapes are read, each only when it is surely the page's own product, not a
recommendation or the cart:

- a Shopify Storefront API product (`handle`, `priceRange`, `variants.edges|nodes`,
  `availableForSale`), whose `handle` is the last segment of the page's path; money is a
  decimal string with its `currencyCode`;
- a plain product object named like the page's <h1> with a numeric price and an ISO currency,
  taken only when the page also shows that price (guards against cents and net prices).

Fields carry the source "api" (the shop's own data, as for embedded Shopify product JSON).
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from urllib.parse import urlsplit

from lxml import etree

from catalog.services import ProductData
from pipeline.platforms.base import absolute_url
from pipeline.platforms.extract.schema import mark_sources
from pipeline.platforms.prices import normalize_currency, parse_price

MAX_SCRIPT = 3_000_000
MAX_NODES = 20_000
ASSIGNED = re.compile(r"window\.__[A-Z][A-Z0-9_]*__\s*=\s*(?={)")
PRICE_KEYS = ("price", "salePrice", "finalPrice", "currentPrice")
LIST_KEYS = ("listPrice", "regularPrice", "compareAtPrice", "oldPrice", "originalPrice")
CURRENCY_KEYS = ("currency", "currencyCode", "priceCurrency")


def state_blobs(tree: etree._Element) -> list[object]:
    """JSON state of the page: JSON scripts (not JSON-LD) and `window.__X__ = {…}` objects."""
    found: list[object] = []
    for script in tree.iter("script"):
        text = (script.text or "").strip()
        kind = (script.get("type") or "").lower()
        if not text or len(text) > MAX_SCRIPT or "ld+json" in kind:
            continue
        try:
            if "json" in kind:
                found.append(json.loads(text))
            elif match := ASSIGNED.search(text):
                found.append(json.JSONDecoder().raw_decode(text, match.end())[0])
        except (ValueError, RecursionError):  # broken, or nested past the parser's stack
            continue
    return found


def _dicts(value: object):
    """Every dict inside `value`, breadth first, at most MAX_NODES visited."""
    queue, seen = deque([value]), 0
    while queue and seen < MAX_NODES:
        item = queue.popleft()
        seen += 1
        if isinstance(item, dict):
            yield item
            queue.extend(item.values())
        elif isinstance(item, list):
            queue.extend(item)


def _slug(page_url: str) -> str:
    return urlsplit(page_url).path.rstrip("/").rsplit("/", 1)[-1].lower()


def _nodes(connection: object) -> list[dict]:
    """A GraphQL connection's items ({"edges": [{"node": …}]} or {"nodes": […]})."""
    if not isinstance(connection, dict):
        return []
    items = connection.get("nodes") or [e.get("node") for e in connection.get("edges") or []]
    return [i for i in items if isinstance(i, dict)]


def _money(value: object) -> tuple[Decimal | None, str]:
    if not isinstance(value, dict):
        return None, ""
    currency = normalize_currency(value.get("currencyCode"))
    return (parse_price(value.get("amount"), currency) if currency else None), currency


def _storefront(data: dict, page_url: str, external_id: str) -> ProductData | None:
    variants = _nodes(data.get("variants"))
    buyable = [v for v in variants if v.get("availableForSale") is True]
    chosen = (buyable or variants or [{}])[0]
    price, currency = _money(chosen.get("price"))
    if price is None:
        price, currency = _money((data.get("priceRange") or {}).get("minVariantPrice"))
    listed, list_currency = _money(chosen.get("compareAtPrice"))
    image = (data.get("featuredImage") or {}).get("url") or next(
        (i.get("url") for i in _nodes(data.get("images")) if i.get("url")), ""
    )
    available = data.get("availableForSale")
    product = ProductData(
        external_id=external_id,
        url=page_url,
        title=str(data.get("title") or "").strip(),
        brand=str(data.get("vendor") or "").strip(),
        price=price,
        currency=currency,
        list_price=listed
        if listed and price and listed > price and list_currency == currency
        else None,
        image_urls=[absolute_url(image, page_url)] if image else [],
        sku=str(chosen.get("sku") or "").strip(),
    )
    if isinstance(available, bool):
        product.availability = "in_stock" if available else "out_of_stock"
    return product


def _plain(data: dict, page_url: str, external_id: str, shown: set[Decimal]) -> ProductData | None:
    currency = next((c for k in CURRENCY_KEYS if (c := normalize_currency(data.get(k)))), "")
    raw = next((data[k] for k in PRICE_KEYS if isinstance(data.get(k), (int, float, str))), None)
    price = parse_price(raw, currency) if currency and not isinstance(raw, str) else None
    if price is None or price not in shown:
        return None
    listed = next((data[k] for k in LIST_KEYS if isinstance(data.get(k), (int, float))), None)
    listed = parse_price(listed, currency)
    product = ProductData(
        external_id=external_id,
        url=page_url,
        title=str(data.get("name") or data.get("title")).strip(),
        price=price,
        currency=currency,
        list_price=listed if listed is not None and listed > price else None,
        sku=str(data.get("sku") or "").strip() if isinstance(data.get("sku"), str) else "",
        brand=data["brand"].strip() if isinstance(data.get("brand"), str) else "",
    )
    stock = data.get("inStock", data.get("availableForSale"))
    if isinstance(stock, bool):
        product.availability = "in_stock" if stock else "out_of_stock"
    return product


def product_from_state(
    tree: etree._Element,
    page_url: str,
    external_id: str,
    heading: str,
    shown: Callable[[], set[Decimal]],
) -> ProductData | None:
    """The page's product from its app state (see module docstring), or None.

    `heading` is the page's <h1>; `shown()` the amounts the page shows (for plain objects).
    """
    slug, wanted = _slug(page_url), " ".join(heading.split()).casefold()
    for blob in state_blobs(tree):
        for data in _dicts(blob):
            product = None
            handle = data.get("handle")
            if isinstance(handle, str) and handle.lower() == slug and data.get("title"):
                if "priceRange" in data or "variants" in data:
                    product = _storefront(data, page_url, external_id)
            elif wanted and isinstance(data.get("name") or data.get("title"), str):
                name = " ".join(str(data.get("name") or data.get("title")).split()).casefold()
                if name == wanted:
                    product = _plain(data, page_url, external_id, shown())
            if product is not None and product.title:
                mark_sources(product, "api")
                return product
    return None
