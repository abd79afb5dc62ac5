"""The demo shop's JSON APIs: Shopify's /products.json and /cart.js, WooCommerce's Store API."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING
from urllib.parse import quote

from demo.shop.render import Reply, image_path, iso_time, json_reply, money_text, page_path

if TYPE_CHECKING:
    from demo.shop.server import DemoShop


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
        coloured = len({id(v.image) for v in p.variants}) > 1
        images = [
            {
                "id": p.id * 100 + i,
                "src": shop.base_url + image_path(shop, im),
                "position": i + 1,
                "width": 1024,
                "height": 1024,
                "product_id": p.id,
                # Shopify ties a picture to the colour variants it shows (sizes share them).
                "variant_ids": [v.id for v in p.variants if coloured and v.image is im],
            }
            for i, im in enumerate(p.images)
        ]
        variants = [_shopify_variant(shop, p, v, images) for v in p.variants]
        products.append(
            {
                "id": p.id,
                "title": p.title,
                "handle": p.handle,
                "body_html": p.description_html,
                "published_at": iso_time(p.created_at),
                "created_at": iso_time(p.created_at),
                "updated_at": iso_time(p.updated_at),
                "vendor": p.brand,
                "product_type": p.category.split(" > ")[-1],
                "tags": p.tags,
                "variants": variants,
                "images": images,
                "options": _shopify_options(p),
            }
        )
    last = max((p.updated_at for p in chunk), default=shop.changed_at)
    return json_reply({"products": products}, last_modified=max(last, shop.changed_at))


def _shopify_options(p) -> list[dict]:
    names = list(dict.fromkeys(name for v in p.variants for name in v.options))
    if not names:
        return [{"name": "Title", "position": 1, "values": ["Default Title"]}]
    return [
        {
            "name": name,
            "position": n + 1,
            "values": list(dict.fromkeys(v.options[name] for v in p.variants)),
        }
        for n, name in enumerate(names)
    ]


def _shopify_variant(shop: DemoShop, p, v, images: list[dict]) -> dict:
    """A variant as /products.json lists it: options, compare_at_price, featured_image (no
    barcode: the public endpoint never shows it; the product page's JSON-LD does)."""
    values = list(v.options.values()) or ["Default Title"]
    featured = next((im for im in images if v.id in im["variant_ids"]), None)
    return {
        "id": v.id,
        "title": v.title,
        "option1": values[0],
        "option2": values[1] if len(values) > 1 else None,
        "option3": None,
        "sku": v.sku,
        "requires_shipping": True,
        "taxable": True,
        "featured_image": featured,
        "available": v.available,
        "price": None if "no_price" in p.quirks else money_text(v.price),
        "grams": 500,
        "compare_at_price": money_text(v.list_price),
        "position": p.variants.index(v) + 1,
        "product_id": p.id,
        "created_at": iso_time(p.created_at),
        "updated_at": iso_time(p.updated_at),
    }


def _woo_prices(shop: DemoShop, p, price, list_price) -> dict:
    cents = "" if "no_price" in p.quirks else str(int(price * 100))
    regular = cents if list_price is None or not cents else str(int(list_price * 100))
    return {
        "price": cents,
        "regular_price": regular,
        "sale_price": cents,
        "currency_code": p.currency,
        "currency_symbol": "$",
        "currency_minor_unit": 2,
        "currency_decimal_separator": ".",
        "currency_thousand_separator": ",",
        "currency_prefix": "$",
        "currency_suffix": "",
    }


def woo_products(shop: DemoShop, query: dict[str, list[str]], path: str) -> Reply:
    """The WooCommerce Store API's /products page: paging headers, Link, variations.

    Long: one JSON document spelled field by field as WooCommerce writes it.
    """
    per_page = _int_arg(query, "per_page", 10)
    if not 1 <= per_page <= 100:
        return Reply(400, "application/json", b'{"code":"rest_invalid_param","message":"per_page"}')
    page = max(1, _int_arg(query, "page", 1))
    total = len(shop.products)
    pages = max(1, math.ceil(total / per_page))
    chunk = shop.products[(page - 1) * per_page : page * per_page]
    items = []
    for p in chunk:
        variable = len(p.variants) > 1
        prices = _woo_prices(shop, p, p.price, p.list_price)
        if variable and "no_price" not in p.quirks:
            amounts = [str(int(v.price * 100)) for v in p.variants]
            prices["price_range"] = {
                "min_amount": min(amounts, key=int),
                "max_amount": max(amounts, key=int),
            }
        items.append(
            {
                "id": p.id,
                "name": p.title,
                "slug": p.handle,
                "parent": 0,
                "type": "variable" if variable else "simple",
                "variation": "",
                "variations": [
                    {
                        "id": v.id,
                        "attributes": [
                            {"name": name, "value": value.lower()}
                            for name, value in v.options.items()
                        ],
                    }
                    for v in p.variants
                ]
                if variable
                else [],
                "permalink": shop.base_url + page_path(shop, p),
                "sku": f"SKU-{p.id}",
                "short_description": f"<p>{html.escape(p.title)}</p>",
                "description": p.description_html,
                "on_sale": p.list_price is not None,
                "prices": prices,
                "images": [_woo_image(shop, p, i, im) for i, im in enumerate(p.images)],
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


def _woo_image(shop: DemoShop, p, i: int, im) -> dict:
    srcset = ", ".join(f"{shop.base_url}{image_path(shop, im, w)} {w}w" for w in (100, 324, 768))
    return {
        "id": p.id * 100 + i,
        "src": shop.base_url + image_path(shop, im),
        "thumbnail": shop.base_url + image_path(shop, im, 324),
        "srcset": srcset,
        "sizes": "(max-width: 768px) 100vw, 768px",
        "name": im.name,
        "alt": "",
    }


def woo_variation(shop: DemoShop, variation_id: int) -> Reply | None:
    """GET /wp-json/wc/store/v1/products/<variation id>: one variation of a variable product."""
    for p in shop.products:
        for v in p.variants:
            if v.id == variation_id and len(p.variants) > 1:
                image = v.image or p.images[0]
                data = {
                    "id": v.id,
                    "name": p.title,
                    "parent": p.id,
                    "type": "variation",
                    "variation": ", ".join(f"{k}: {val}" for k, val in v.options.items()),
                    "permalink": shop.base_url
                    + page_path(shop, p)
                    + "?"
                    + "&".join(
                        f"attribute_pa_{k.lower()}={quote(val.lower())}"
                        for k, val in v.options.items()
                    ),
                    "sku": v.sku,
                    "on_sale": v.list_price is not None,
                    "prices": _woo_prices(shop, p, v.price, v.list_price),
                    "images": [_woo_image(shop, p, p.images.index(image), image)],
                    "is_in_stock": v.available,
                    "is_on_backorder": False,
                    "is_purchasable": True,
                }
                return json_reply(data, last_modified=max(p.updated_at, shop.changed_at))
    return None


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
