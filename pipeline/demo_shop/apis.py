"""The demo shop's JSON APIs: Shopify's /products.json and /cart.js, WooCommerce's Store API."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING
from urllib.parse import quote

from pipeline.demo_shop.render import Reply, _iso, _money, _page_path, image_path, json_reply

if TYPE_CHECKING:
    from pipeline.demo_shop.server import DemoShop


def _int_arg(query: dict[str, list[str]], name: str, default: int) -> int:
    try:
        return int(query.get(name, [default])[0])
    except ValueError:
        return default


def shopify_products_json(shop: DemoShop, query: dict[str, list[str]]) -> Reply:
    limit = max(1, min(_int_arg(query, "limit", 30), 250))
    page = max(1, _int_arg(query, "page", 1))
    if page * limit > 25_000:
        return Reply(400, "application/json", b'{"errors":"Page * Limit exceeds the 25000 limit."}')
    chunk = shop.products[(page - 1) * limit : page * limit]
    products = []
    for p in chunk:
        price = None if "no_price" in p.quirks else _money(p.price)
        variants = [
            {
                "id": p.id * 10 + v,
                "title": ["Default Title", "Small", "Large"][v + (p.variants > 1)],
                "price": price,
                "compare_at_price": None,
                "sku": f"SKU-{p.id}-{v}",
                "available": p.availability == "in_stock" and not (v and p.id % 2),
                "product_id": p.id,
                "updated_at": _iso(p.updated_at),
            }
            for v in range(p.variants)
        ]
        images = [
            {
                "id": p.id * 100 + i,
                "src": shop.base_url + image_path(shop, im),
                "position": i + 1,
                "width": 1024,
                "height": 1024,
                "product_id": p.id,
                "variant_ids": [],
            }
            for i, im in enumerate(p.images)
        ]
        products.append(
            {
                "id": p.id,
                "title": p.title,
                "handle": p.handle,
                "body_html": p.description_html,
                "published_at": _iso(p.created_at),
                "created_at": _iso(p.created_at),
                "updated_at": _iso(p.updated_at),
                "vendor": p.brand,
                "product_type": p.category.split(" > ")[-1],
                "tags": p.tags,
                "variants": variants,
                "images": images,
                "options": [{"name": "Title", "position": 1, "values": ["Default Title"]}],
            }
        )
    last = max((p.updated_at for p in chunk), default=shop.changed_at)
    return json_reply({"products": products}, last_modified=max(last, shop.changed_at))


def woo_products(shop: DemoShop, query: dict[str, list[str]], path: str) -> Reply:
    per_page = _int_arg(query, "per_page", 10)
    if not 1 <= per_page <= 100:
        return Reply(400, "application/json", b'{"code":"rest_invalid_param","message":"per_page"}')
    page = max(1, _int_arg(query, "page", 1))
    total = len(shop.products)
    pages = max(1, math.ceil(total / per_page))
    chunk = shop.products[(page - 1) * per_page : page * per_page]
    minor = 2
    items = []
    for p in chunk:
        cents = "" if "no_price" in p.quirks else str(int(p.price * 100))
        srcset = lambda im: ", ".join(  # noqa: E731
            f"{shop.base_url}{image_path(shop, im, w)} {w}w" for w in (100, 324, 768)
        )
        items.append(
            {
                "id": p.id,
                "name": p.title,
                "slug": p.handle,
                "parent": 0,
                "type": "simple",
                "permalink": shop.base_url + _page_path(shop, p),
                "sku": f"SKU-{p.id}",
                "short_description": f"<p>{html.escape(p.title)}</p>",
                "description": p.description_html,
                "on_sale": False,
                "prices": {
                    "price": cents,
                    "regular_price": cents,
                    "sale_price": cents,
                    "currency_code": p.currency,
                    "currency_symbol": "$",
                    "currency_minor_unit": minor,
                    "currency_decimal_separator": ".",
                    "currency_thousand_separator": ",",
                    "currency_prefix": "$",
                    "currency_suffix": "",
                },
                "images": [
                    {
                        "id": p.id * 100 + i,
                        "src": shop.base_url + image_path(shop, im),
                        "thumbnail": shop.base_url + image_path(shop, im, 324),
                        "srcset": srcset(im),
                        "sizes": "(max-width: 768px) 100vw, 768px",
                        "name": im.name,
                        "alt": "",
                    }
                    for i, im in enumerate(p.images)
                ],
                "categories": [
                    {"id": 1, "name": p.category.split(" > ")[-1], "slug": "c", "link": ""}
                ],
                "tags": [{"id": 1, "name": t, "slug": t, "link": ""} for t in p.tags],
                "brands": [{"id": 1, "name": p.brand, "slug": "b", "link": ""}],
                "is_in_stock": p.availability == "in_stock",
                "is_on_backorder": p.availability == "preorder",
                "is_purchasable": True,
                "stock_availability": {"text": "", "class": p.availability.replace("_", "-")},
            }
        )
    headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
    if page < pages:
        sep = "&" if "?" in path else "?"
        nxt = f"{shop.base_url}{path}{sep}per_page={per_page}&page={page + 1}"
        headers["Link"] = f'<{quote(nxt, safe=":/?&=")}>; rel="next"'
    last = max((p.updated_at for p in chunk), default=shop.changed_at)
    return json_reply(items, last_modified=max(last, shop.changed_at), headers=headers)


def woo_index(shop: DemoShop) -> Reply:
    data = {
        "name": "Demo home goods",
        "url": shop.base_url,
        "namespaces": ["oembed/1.0", "wp/v2", "wc/store/v1"],
    }
    reply = json_reply(data, last_modified=shop.started_at)
    reply.headers["Link"] = f'<{shop.base_url}/wp-json/>; rel="https://api.w.org/"'
    return reply


def shopify_cart(shop: DemoShop) -> Reply:
    return json_reply({"token": "demo", "item_count": 0, "items": [], "currency": shop.currency})
