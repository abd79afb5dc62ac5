"""What the demo shop answers for each flavour: Shopify-like, WooCommerce-like, plain schema.org.

Pure functions from (shop state, path, query) to a `Reply`; the server adds faults, conditional
requests, compression and the request log on top.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from demo.shop.catalog import DemoImage, DemoProduct

if TYPE_CHECKING:
    from demo.shop.server import DemoShop

SCHEMA_AVAIL = {"in_stock": "InStock", "out_of_stock": "OutOfStock", "preorder": "PreOrder"}


@dataclass
class Reply:
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    last_modified: datetime | None = None


def not_found() -> Reply:
    return Reply(
        404, body=b"<html><head><title>404 Not Found</title></head><body>Not found</body></html>"
    )


def json_reply(data, *, last_modified=None, headers=None) -> Reply:
    body = json.dumps(data, indent=None, separators=(",", ":")).encode()
    return Reply(200, "application/json; charset=utf-8", body, headers or {}, last_modified)


def html_reply(text: str, *, last_modified=None) -> Reply:
    return Reply(200, "text/html; charset=utf-8", text.encode(), {}, last_modified)


def money_text(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def iso_time(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


# --- image URLs ------------------------------------------------------------------------------


def image_path(shop: DemoShop, image: DemoImage, width: int | None = None) -> str:
    if shop.flavour == "shopify":
        path = f"/cdn/shop/files/{image.name}.{image.fmt}?v=1767600000"
        return path + (f"&width={width}" if width else "")
    if shop.flavour == "woocommerce":
        size = f"-{width}x{width}" if width else ""
        return f"/wp-content/uploads/2026/01/{image.name}{size}.{image.fmt}"
    return f"/images/{image.name}.{image.fmt}"


def page_path(shop: DemoShop, product: DemoProduct) -> str:
    return {
        "shopify": f"/products/{product.handle}",
        "woocommerce": f"/product/{product.handle}/",
        "schema_org": f"/p/{product.handle}",
    }[shop.flavour]


# --- HTML pages ------------------------------------------------------------------------------


def _page(title: str, head: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>{head}</head><body>{body}</body></html>"
    )


def _script_ld(data) -> str:
    text = json.dumps(data, indent=1).replace("/", "\\/")  # as Shopify's json filter does
    return f'<script type="application/ld+json">{text}</script>'


def _availability_url(shop: DemoShop, product: DemoProduct) -> str:
    name = SCHEMA_AVAIL[product.availability]
    if shop.flavour != "schema_org":
        return f"https://schema.org/{name}"
    # Real sites spell it every way schema.org allows, and some it doesn't.
    return [f"https://schema.org/{name}", f"http://schema.org/{name}", name, f"schema:{name}"][
        product.id % 4
    ]


def _list_price_spec(price: Decimal, currency: str) -> dict:
    return {
        "@type": "UnitPriceSpecification",
        "priceType": "https://schema.org/ListPrice",
        "price": money_text(price),
        "priceCurrency": currency,
    }


def _offer(shop: DemoShop, product: DemoProduct, url: str) -> dict:
    offer: dict = {"@type": "Offer", "url": url, "availability": _availability_url(shop, product)}
    currency = "€" if "symbol_currency" in product.quirks else product.currency
    if "no_price" not in product.quirks:
        price = money_text(product.price)
        if "comma_price" in product.quirks:
            price = price.replace(".", ",")
        if shop.flavour == "woocommerce":
            offer["priceSpecification"] = [
                {
                    "@type": "UnitPriceSpecification",
                    "price": price,
                    "priceCurrency": currency,
                    "valueAddedTaxIncluded": False,
                }
            ]
        else:
            offer["price"] = float(price) if product.id % 3 == 0 and "," not in price else price
            offer["priceCurrency"] = currency
        if product.list_price is not None:  # on sale: the regular price, as Google asks for it
            specs = offer.get("priceSpecification", [])
            offer["priceSpecification"] = [*specs, _list_price_spec(product.list_price, currency)]
    return offer


def _variant_node(shop: DemoShop, product: DemoProduct, variant, url: str) -> dict:
    """A hasVariant member as Shopify themes write it: its own SKU, GTIN, picture and offer."""
    avail = "InStock" if variant.available else "OutOfStock"
    offer = {
        "@type": "Offer",
        "url": f"{url}?variant={variant.id}",
        "price": money_text(variant.price),
        "priceCurrency": product.currency,
        "availability": f"https://schema.org/{avail}",
    }
    if variant.list_price is not None:
        offer["priceSpecification"] = _list_price_spec(variant.list_price, product.currency)
    node = {
        "@type": "Product",
        "name": f"{product.title} - {variant.title}",
        "sku": variant.sku,
        "gtin13": variant.gtin,
        "image": (shop.base_url + image_path(shop, variant.image)).replace("http:", "", 1),
        "offers": offer,
    }
    for name, value in variant.options.items():
        node["color" if name == "Colour" else "size"] = value
    return node


def _json_ld(shop: DemoShop, product: DemoProduct) -> dict:
    base = shop.base_url
    url = base + page_path(shop, product)
    images = [base + image_path(shop, im) for im in product.images]
    if shop.flavour == "shopify":
        images = [u.replace("http:", "", 1) for u in images]  # protocol-relative, like Shopify
    elif shop.flavour == "schema_org" and product.id % 2:
        images = [image_path(shop, im) for im in product.images]  # relative
    data: dict = {
        "@context": "https://schema.org",
        "@type": "Product",
        "@id": page_path(shop, product) + "#product",
        "name": product.title,
        "description": product.description_text,
        "url": url,
        "sku": f"SKU-{product.id}",
        "gtin13": product.gtin,
        "mpn": product.mpn,
        "brand": {"@type": "Brand", "name": product.brand} if product.id % 2 else product.brand,
        "category": product.category,
        "image": images if len(images) > 1 or product.id % 5 else images[0],
        "offers": _offer(shop, product, url),
    }
    if shop.flavour == "shopify" and len(product.variants) > 1:
        data["@type"] = "ProductGroup"
        data["productGroupID"] = str(product.id)
        del data["offers"], data["gtin13"]
        names = {n for v in product.variants for n in v.options}
        data["variesBy"] = [
            f"https://schema.org/{'color' if n == 'Colour' else 'size'}" for n in sorted(names)
        ]
        data["hasVariant"] = [_variant_node(shop, product, v, url) for v in product.variants]
    return data


def _microdata(shop: DemoShop, product: DemoProduct) -> str:
    avail = f"https://schema.org/{SCHEMA_AVAIL[product.availability]}"
    images = "".join(
        f'<img itemprop="image" src="{image_path(shop, im)}" alt="">' for im in product.images
    )
    return (
        '<div itemscope itemtype="https://schema.org/Product">'
        f'<h1 itemprop="name">{html.escape(product.title)}</h1>{images}'
        f'<div itemprop="brand" itemscope itemtype="https://schema.org/Brand">'
        f'<span itemprop="name">{html.escape(product.brand)}</span></div>'
        f'<div itemprop="description">{product.description_html}</div>'
        '<div itemprop="offers" itemscope itemtype="https://schema.org/Offer">'
        f'<span itemprop="price" content="{product.price:.2f}">{product.price}</span>'
        f'<meta itemprop="priceCurrency" content="{product.currency}">'
        f'<link itemprop="availability" href="{avail}"></div></div>'
    )


def _opengraph(shop: DemoShop, product: DemoProduct, *, prefix: str) -> str:
    tags = [
        ("og:type", "product"),
        ("og:title", product.title),
        ("og:description", product.description_text),
        ("og:url", shop.base_url + page_path(shop, product)),
    ]
    tags += [("og:image", shop.base_url + image_path(shop, im)) for im in product.images[:1]]
    if "no_price" not in product.quirks:
        tags += [
            (f"{prefix}:price:amount", money_text(product.price)),
            (f"{prefix}:price:currency", product.currency),
        ]
    tags += [
        (
            "product:availability",
            {"in_stock": "instock", "out_of_stock": "oos", "preorder": "preorder"}[
                product.availability
            ],
        ),
        ("product:brand", product.brand),
    ]
    return "".join(
        f'<meta property="{k}" content="{html.escape(str(v))}">' for k, v in tags if v is not None
    )


def _plain_page(shop: DemoShop, product: DemoProduct) -> Reply:
    """A shop page with no product markup at all: what a shopper reads off the page."""
    stock = {
        "in_stock": "In stock, ships in 2-4 days",
        "out_of_stock": "Out of stock",
        "preorder": "Available for pre-order",
    }[product.availability]
    symbol = {"EUR": "€", "USD": "$", "GBP": "£"}.get(product.currency, product.currency + " ")
    price = f'<span class="price">{symbol}{product.price:.2f}</span>'
    if product.list_price is not None:
        price = f'<s class="price-old">{symbol}{product.list_price:.2f}</s> ' + price
    gallery = "".join(
        f'<img src="{image_path(shop, im)}" alt="{html.escape(product.title)}">'
        for im in product.images
    )
    body = (
        f'<nav><a href="/">Home</a> / {html.escape(product.category)}</nav>'
        f'<main><div class="gallery">{gallery}</div><div class="summary">'
        f"<h1>{html.escape(product.title)}</h1><p class=product-price>{price}</p>"
        f'<p class="stock">{stock}</p><button type=submit>Add to basket</button>'
        f"<div class=description>{product.description_html}</div></div></main>"
    )
    return html_reply(_page(product.title, "", body), last_modified=product.updated_at)


def product_page(shop: DemoShop, product: DemoProduct, index: int) -> Reply:
    if "soft404" in product.quirks:
        return html_reply(_page("Page not found", "", "<h1>Oops! We couldn't find that page.</h1>"))
    if shop.markup == "none":
        return _plain_page(shop, product)
    canonical = f'<link rel="canonical" href="{shop.base_url}{page_path(shop, product)}">'
    blocks = []
    if {"malformed_jsonld", "only_malformed_jsonld"} & product.quirks:
        blocks.append(
            '<script type="application/ld+json">{"@type": "Product", "name": "Broken",, '
            '"offers": {"price": 1}</script>'
        )
    style = "jsonld"
    if shop.flavour == "schema_org" and index % 9 == 4:
        style = "microdata"
    elif shop.flavour == "schema_org" and index % 9 == 7:
        style = "opengraph"
    if "only_malformed_jsonld" in product.quirks:
        style = "none"
    ld = _json_ld(shop, product)
    if style == "jsonld":
        if shop.flavour == "woocommerce" or (shop.flavour == "schema_org" and index % 3 == 0):
            webpage = {"@type": "WebPage", "@id": ld["url"], "name": product.title}
            inner = {k: v for k, v in ld.items() if k != "@context"}
            ld = {"@context": "https://schema.org/", "@graph": [webpage, inner]}
        blocks.append(_script_ld(ld))
    og_prefix = "og" if shop.flavour == "shopify" else "product"
    head = canonical + (
        _opengraph(shop, product, prefix=og_prefix) if style not in ("microdata", "none") else ""
    )
    if shop.flavour == "shopify":
        head += (
            '<script>window.Shopify = {"shop": "demo.myshopify.com", "theme": {"id": 1}};</script>'
        )
    gallery = "".join(
        f'<img src="{image_path(shop, im, 640 if shop.flavour == "shopify" else None)}" '
        f'alt="{html.escape(product.title)}">'
        for im in product.images
    )
    main = (
        _microdata(shop, product)
        if style == "microdata"
        else (
            f"<h1>{html.escape(product.title)}</h1>{gallery}"
            f"<div class=description>{product.description_html}</div>"
        )
    )
    body = f"<main>{main}</main>" + "".join(blocks)
    return html_reply(_page(product.title, head, body), last_modified=product.updated_at)


def home_page(shop: DemoShop) -> Reply:
    links = "".join(
        f'<li><a href="{page_path(shop, p)}">{html.escape(p.title)}</a></li>' for p in shop.products
    )
    head = ""
    if shop.flavour == "shopify":
        head = '<link rel="preconnect" href="https://cdn.shopify.com"><script>Shopify.theme = {};</script>'
    if shop.flavour == "woocommerce":
        head = f'<link rel="https://api.w.org/" href="{shop.base_url}/wp-json/">'
    return html_reply(
        _page("Demo home goods", head, f"<ul>{links}</ul>"), last_modified=shop.changed_at
    )


# --- sitemaps --------------------------------------------------------------------------------


def _urlset(entries: list[tuple[str, datetime, list[str]]]) -> str:
    items = []
    for loc, lastmod, images in entries:
        imgs = "".join(
            f"<image:image><image:loc>{html.escape(i)}</image:loc></image:image>" for i in images
        )
        items.append(
            f"<url><loc>{html.escape(loc)}</loc><lastmod>{iso_time(lastmod)}</lastmod>{imgs}</url>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">'
        + "".join(items)
        + "</urlset>"
    )


def sitemap(shop: DemoShop, path: str) -> Reply | None:
    xml = "application/xml; charset=utf-8"
    product_map = {
        "shopify": "/sitemap_products_1.xml",
        "woocommerce": "/wp-sitemap-posts-product-1.xml",
        "schema_org": "/sitemap-products.xml",
    }[shop.flavour]
    if path == "/sitemap.xml":
        children = [product_map, "/sitemap-pages.xml"]
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            + "".join(
                f"<sitemap><loc>{shop.base_url}{c}</loc><lastmod>{iso_time(shop.changed_at)}</lastmod></sitemap>"
                for c in children
            )
            + "</sitemapindex>"
        )
        return Reply(200, xml, body.encode(), {}, shop.changed_at)
    if path == product_map:
        entries = [
            (
                shop.base_url + page_path(shop, p),
                p.updated_at,
                [shop.base_url + image_path(shop, p.images[0])],
            )
            for p in shop.products
        ]
        return Reply(200, xml, _urlset(entries).encode(), {}, shop.changed_at)
    if path == "/sitemap-pages.xml":
        body = _urlset([(shop.base_url + "/about", shop.started_at, [])])
        return Reply(200, xml, body.encode(), {}, shop.started_at)
    return None
