"""WooCommerce stores: the public Store API (/wp-json/wc/store/v1/products), 100 per request.

Prices come in minor units with the currency and its minor unit ("1105", 2 = 11.05); images
are taken from the srcset entry closest above MEEPO_IMAGE_WIDTH rather than the full original.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

from django.conf import settings

from catalog.services import VariantData
from pipeline.exceptions import FetchError
from pipeline.http import FetchResult, HttpError
from pipeline.platforms.base import (
    Listing,
    ProductData,
    absolute_url,
    normalize_currency,
    parse_price,
    plain_text,
    unique,
)
from pipeline.platforms.context import STOP_ERRORS, CrawlContext, Fetched, fetch
from pipeline.platforms.extract.schema import mark_sources
from pipeline.platforms.identifiers import clean_identifier, normalize_gtin
from pipeline.platforms.paged_json import paged_json_listings

# Pretty permalinks give /wp-json/...; sites on "plain" permalinks only answer ?rest_route=.
API_FORMS = ("/wp-json/wc/store/v1/products?", "/?rest_route=/wc/store/v1/products&")
PAGE_SIZE = 100
MAX_PAGES = 500
JSON = ["application/json"]


def _page_url(ctx: CrawlContext, form: str, page: int, per_page: int = PAGE_SIZE) -> str:
    return f"{ctx.base_url}{form}per_page={per_page}&page={page}"


def detect(ctx: CrawlContext) -> bool:
    for form in API_FORMS:
        try:
            result = ctx.fetcher.get(_page_url(ctx, form, 1, 1), kind="api", accept_types=JSON)
            if isinstance(json.loads(result.body), list):
                return True
        except STOP_ERRORS:
            raise
        except (FetchError, ValueError):
            continue
    return False


def _price(prices: dict, key: str = "price") -> Decimal | None:
    """An amount in minor units ("1105", minor unit 2) as a Decimal in the currency's unit."""
    raw = str(prices.get(key) or "").strip()
    currency = normalize_currency(prices.get("currency_code"))
    try:
        minor = int(prices.get("currency_minor_unit", 2))
        value = Decimal(raw) / (Decimal(10) ** minor)
    except (InvalidOperation, ValueError, TypeError):
        return None
    return parse_price(value, currency) if value.is_finite() else None


def _availability(item: dict) -> str:
    # The Store API reports back-orderable products as in stock too: back-order wins.
    if item.get("is_on_backorder"):
        return "preorder"
    if item.get("is_in_stock"):
        return "in_stock"
    return "out_of_stock" if "is_in_stock" in item else "unknown"


def parse_variations(item: dict, url: str) -> list[VariantData]:
    """The variations the Store API lists (ids and options; prices live on their own pages)."""
    taxonomies = {
        a.get("name"): a.get("taxonomy") or f"attribute_{a.get('name', '')}".lower()
        for a in item.get("attributes") or []
        if isinstance(a, dict)
    }
    variants = []
    for v in item.get("variations") or []:
        if not isinstance(v, dict) or not v.get("id"):
            continue
        attrs = [a for a in v.get("attributes") or [] if isinstance(a, dict) and a.get("value")]
        options = {plain_text(a.get("name"), 100): plain_text(a["value"], 100) for a in attrs}
        query = "&".join(
            f"attribute_{taxonomies.get(a.get('name'), a.get('name'))}={a['value']}" for a in attrs
        )
        link = f"{url}{'&' if '?' in url else '?'}{query}" if url and query else ""
        variants.append(VariantData(external_id=str(v["id"]), options=options, url=link))
    return variants


def _image_url(image: dict, base_url: str, width: int) -> str:
    """The smallest srcset candidate at least `width` wide, else the full-size src."""
    candidates = []
    for part in str(image.get("srcset") or "").split(","):
        bits = part.strip().split()
        if len(bits) == 2 and bits[1].endswith("w") and bits[1][:-1].isdigit():
            candidates.append((int(bits[1][:-1]), bits[0]))
    big_enough = sorted(c for c in candidates if c[0] >= width)
    chosen = big_enough[0][1] if big_enough else image.get("src")
    return absolute_url(chosen, base_url)


def _names(values: object) -> list[str]:
    items = values if isinstance(values, list) else []
    return [plain_text(v.get("name"), 200) for v in items if isinstance(v, dict) and v.get("name")]


def parse_product(item: dict, base_url: str) -> ProductData:
    """One Store API product: selling price, regular price when on sale, SKU, variations."""
    prices = item.get("prices") if isinstance(item.get("prices"), dict) else {}
    width = settings.MEEPO_IMAGE_WIDTH
    images = [
        _image_url(im, base_url, width) for im in item.get("images") or [] if isinstance(im, dict)
    ]
    price, regular = _price(prices), _price(prices, "regular_price")
    url = absolute_url(item.get("permalink"), base_url)
    product = ProductData(
        external_id=str(item.get("id") or ""),
        url=url,
        title=plain_text(item.get("name"), 500),
        description=plain_text(item.get("description") or item.get("short_description")),
        brand=", ".join(_names(item.get("brands"))),
        category=", ".join(_names(item.get("categories"))),
        tags=_names(item.get("tags")),
        price=price,
        list_price=regular if regular and price and regular > price else None,
        currency=normalize_currency(prices.get("currency_code")),
        availability=_availability(item),
        image_urls=unique(images),
        sku=clean_identifier(item.get("sku")),
        gtin=normalize_gtin(item.get("gtin") or item.get("global_unique_id")),
        variants=parse_variations(item, url),
    )
    mark_sources(product, "api")
    return product


def _read_products(result: FetchResult) -> list:
    items = json.loads(result.body)
    if not isinstance(items, list):
        raise ValueError("expected a JSON list of products")
    return items


def _total_pages(result: FetchResult) -> int | None:
    header = result.headers.get("X-WP-TotalPages", "")
    return int(header) if header.isdigit() else None


def iter_listings(ctx: CrawlContext) -> Iterator[Listing]:
    # Start with the form that worked last time (its page 1 has a FetchState).
    form = API_FORMS[1] if ctx.previous(_page_url(ctx, API_FORMS[1], 1)) else API_FORMS[0]

    def fetch_page(listing: Listing) -> Fetched:
        nonlocal form
        try:
            return fetch(ctx, listing.url, kind="api", accept_types=JSON)
        except HttpError as exc:
            if not (exc.status == 404 and listing.url == _page_url(ctx, API_FORMS[0], 1)):
                raise
        form = API_FORMS[1]  # pretty permalinks are off: only ?rest_route= answers
        listing.url = _page_url(ctx, form, 1)
        return fetch(ctx, listing.url, kind="api", accept_types=JSON)

    yield from paged_json_listings(
        ctx,
        lambda page: _page_url(ctx, form, page),
        page_size=PAGE_SIZE,
        max_pages=MAX_PAGES,
        accept_types=JSON,
        read_items=_read_products,
        parse_item=lambda item: parse_product(item, ctx.base_url),
        document="Store API page",
        total_pages=_total_pages,
        fetch_page=fetch_page,
    )
