"""Shopify storefronts: the public /products.json, 250 products per request.

A 2,000-product store is 8 requests instead of 2,000 pages. Prices carry no currency, so the
store currency comes from /cart.js (falling back to a product page's JSON-LD). Images are asked
for at MEEPO_IMAGE_WIDTH through the CDN's `width` parameter.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings

from catalog.services import VariantData
from pipeline.exceptions import FetchError
from pipeline.http import FetchResult
from pipeline.platforms.base import (
    Listing,
    ProductData,
    absolute_url,
    normalize_currency,
    parse_price,
    plain_text,
    unique,
)
from pipeline.platforms.context import STOP_ERRORS, CrawlContext, fetch
from pipeline.platforms.extract.schema import mark_sources
from pipeline.platforms.identifiers import clean_identifier, normalize_gtin
from pipeline.platforms.paged_json import paged_json_listings
from pipeline.platforms.structured import extract_products

logger = logging.getLogger(__name__)
PAGE_SIZE = 250
MAX_PAGES = 25_000 // PAGE_SIZE  # Shopify refuses page x limit > 25,000
JSON = ["application/json", "text/javascript", "application/javascript"]


def detect(ctx: CrawlContext) -> bool:
    try:
        result = ctx.fetcher.get(
            f"{ctx.base_url}/products.json?limit=1", kind="api", accept_types=JSON
        )
        data = json.loads(result.body)
    except STOP_ERRORS:
        raise
    except (FetchError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("products"), list)


def sized_image_url(url: str, width: int) -> str:
    parts = urlsplit(url)
    if not (parts.netloc.endswith("cdn.shopify.com") or "/cdn/shop/" in parts.path):
        return url
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "width"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("width", str(width))])))


def _store_currency(ctx: CrawlContext, listing: Listing) -> str:
    url = f"{ctx.base_url}/cart.js"
    try:
        fetched = fetch(ctx, url, kind="api", accept_types=JSON)
        if fetched.unchanged:
            currency = next(iter(ctx.previous_items(url)), "")
        else:
            currency = normalize_currency(json.loads(fetched.result.body).get("currency"))
        fetched.record.items = [currency] if currency else []
        listing.records.append(fetched.record)
        if currency:
            return currency
    except STOP_ERRORS:
        raise
    except (FetchError, ValueError, AttributeError) as exc:
        logger.info("no currency from %s: %s", url, exc)
    return ""


def _currency_from_page(ctx: CrawlContext, handle: str) -> str:
    try:
        result = ctx.fetcher.get(f"{ctx.base_url}/products/{handle}", kind="page")
    except STOP_ERRORS:
        raise
    except FetchError:
        return ""
    content_type = result.headers.get("Content-Type", "")
    products, _ = extract_products(result.body, result.url, content_type=content_type)
    return products[0].currency if products else ""


def _variant_images(item: dict, base_url: str, width: int) -> dict[str, str]:
    """Variant id → its photo, from images[].variant_ids and variants[].featured_image."""
    found: dict[str, str] = {}
    for image in item.get("images") or []:
        if isinstance(image, dict):
            url = sized_image_url(absolute_url(image.get("src"), base_url), width)
            for vid in image.get("variant_ids") or []:
                found.setdefault(str(vid), url)
    for variant in item.get("variants") or []:
        featured = variant.get("featured_image") if isinstance(variant, dict) else None
        if isinstance(featured, dict) and featured.get("src"):
            url = sized_image_url(absolute_url(featured["src"], base_url), width)
            found.setdefault(str(variant.get("id")), url)
    return found


def parse_variants(item: dict, base_url: str, currency: str, url: str) -> list[VariantData]:
    """Every variant with options, SKU, GTIN (barcode), sale/list price, stock, photo, link."""
    names = [
        plain_text(o.get("name"), 100) or f"Option {i + 1}"
        for i, o in enumerate(item.get("options") or [])
        if isinstance(o, dict)
    ]
    photos = _variant_images(item, base_url, settings.MEEPO_IMAGE_WIDTH)
    variants = []
    for v in item.get("variants") or []:
        if not isinstance(v, dict):
            continue
        vid = str(v.get("id") or "")
        values = [v.get(f"option{i + 1}") for i in range(3)]
        options = {n: plain_text(val, 100) for n, val in zip(names, values, strict=False) if val}
        price = parse_price(v.get("price"), currency)
        listed = parse_price(v.get("compare_at_price"), currency)
        variants.append(
            VariantData(
                external_id=vid,
                title=plain_text(v.get("title"), 500),
                options=options,
                sku=clean_identifier(v.get("sku")),
                gtin=normalize_gtin(v.get("barcode")),
                price=price,
                list_price=listed if listed and price and listed > price else None,
                availability="in_stock" if v.get("available") else "out_of_stock",
                image_url=photos.get(vid, ""),
                url=f"{url}?variant={vid}" if url and vid else "",
            )
        )
    return variants


def parse_product(item: dict, base_url: str, currency: str) -> ProductData:
    """One products.json entry: the cheapest available variant's price (and its list price),
    identifiers of the variant a shopper sees first (the first available), every variant."""
    handle = str(item.get("handle") or "")
    url = f"{base_url}/products/{handle}" if handle else ""
    variants = parse_variants(item, base_url, currency, url)
    available = [v for v in variants if v.availability == "in_stock"]
    priced = [v for v in (available or variants) if v.price is not None]
    cheapest = min(priced, key=lambda v: v.price) if priced else None
    shown = (available or variants or [VariantData(external_id="")])[0]
    tags = item.get("tags") or []
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",")]
    width = settings.MEEPO_IMAGE_WIDTH
    images = [
        sized_image_url(absolute_url(im.get("src"), base_url), width)
        for im in sorted(
            (i for i in item.get("images") or [] if isinstance(i, dict)),
            key=lambda i: i.get("position") or 0,
        )
    ]
    product = ProductData(
        external_id=str(item.get("id") or ""),
        url=url,
        title=plain_text(item.get("title"), 500),
        description=plain_text(item.get("body_html")),
        brand=plain_text(item.get("vendor"), 200),
        category=plain_text(item.get("product_type"), 300),
        tags=[plain_text(t, 100) for t in tags if isinstance(t, str) and t.strip()],
        price=cheapest.price if cheapest else None,
        list_price=cheapest.list_price if cheapest else None,
        currency=currency,
        availability="in_stock" if available else ("out_of_stock" if variants else "unknown"),
        image_urls=unique(u for u in images if u),
        sku=shown.sku,
        gtin=shown.gtin,
        mpn="",
        variants=variants if len(variants) > 1 else [],
    )
    mark_sources(product, "api")
    return product


def _read_products(result: FetchResult) -> list:
    items = json.loads(result.body).get("products")
    if not isinstance(items, list):
        raise ValueError("no 'products' list")
    return items


def iter_listings(ctx: CrawlContext) -> Iterator[Listing]:
    first = Listing(f"{ctx.base_url}/cart.js")
    currency = _store_currency(ctx, first)
    yield first

    def read_items(result: FetchResult) -> list:
        # Without a currency from /cart.js, the first page with products asks a product page.
        nonlocal currency
        items = _read_products(result)
        if not currency and items and isinstance(items[0], dict):
            currency = _currency_from_page(ctx, str(items[0].get("handle", "")))
        return items

    yield from paged_json_listings(
        ctx,
        lambda page: f"{ctx.base_url}/products.json?limit={PAGE_SIZE}&page={page}",
        page_size=PAGE_SIZE,
        max_pages=MAX_PAGES,
        accept_types=JSON,
        read_items=read_items,
        parse_item=lambda item: parse_product(item, ctx.base_url, currency),
        document="products.json",
    )
