"""The paged-JSON crawl loop shared by the API platforms (Shopify's /products.json, WooCommerce's
Store API): page after page, one `Listing` each, until a short page, the last page the API
announces, the page cap or the crawl's product limit.

Each page is a conditional GET: an unchanged page (304, or the same bytes) lists the ids it listed
last time. A page that fails (HTTP error, timeout) or cannot be read ends the crawl of the store
with `complete = False`, so no product is deactivated for it. An unreadable page's fetch record
carries its error, so the next crawl reads it again instead of taking it as unchanged.
A platform supplies only what differs: its page URLs, how to read the item list out of a page,
how to parse one item, and optionally a page count from the headers or its own fetch (a fallback
URL form).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from pipeline.exceptions import FetchError
from pipeline.http import FetchResult
from pipeline.platforms.base import Failure, Listing, ProductData
from pipeline.platforms.context import STOP_ERRORS, CrawlContext, Fetched, fetch


def paged_json_listings(
    ctx: CrawlContext,
    page_url: Callable[[int], str],
    *,
    page_size: int,
    max_pages: int,
    accept_types: list[str],
    read_items: Callable[[FetchResult], list],
    parse_item: Callable[[dict], ProductData],
    document: str,
    total_pages: Callable[[FetchResult], int | None] = lambda result: None,
    fetch_page: Callable[[Listing], Fetched] | None = None,
) -> Iterator[Listing]:
    """One Listing per API page, page 1 up.

    `read_items(result)` returns the page's item list and raises ValueError (or AttributeError)
    when the page is unreadable; `document` names the page in that failure ("products.json").
    `total_pages(result)` reads an announced page count (else the crawl stops at a short page).
    `fetch_page(listing)` replaces the plain conditional GET of `listing.url`; it may change
    `listing.url` to the URL it ended up asking (WooCommerce's fallback form).
    One loop (about 45 lines of code) so that every stop rule reads in one place.
    """
    if fetch_page is None:
        fetch_page = partial(_fetch_api_page, ctx, accept_types)
    last_page = None
    for page in range(1, max_pages + 1):
        if ctx.limit_reached() or (last_page is not None and page > last_page):
            return
        listing = Listing(page_url(page))
        try:
            fetched = fetch_page(listing)
        except STOP_ERRORS:
            raise
        except FetchError as exc:
            yield listing.fail(listing.url, str(exc))
            return
        listing.records.append(fetched.record)
        if fetched.unchanged:
            listing.unchanged_ids = fetched.record.items = ctx.previous_items(listing.url)
            yield listing
            if len(listing.unchanged_ids) < page_size:
                return
            continue
        last_page = total_pages(fetched.result)
        try:
            items = read_items(fetched.result)
        except (ValueError, AttributeError) as exc:
            fetched.record.error = str(exc)
            yield listing.fail(listing.url, f"unreadable {document}: {exc}")
            return
        for item in items:
            if isinstance(item, dict):
                listing.products.append(parse_item(item))
            else:
                listing.failures.append(Failure(listing.url, "product entry is not an object"))
        fetched.record.items = [p.external_id for p in listing.products]
        yield listing
        if len(items) < page_size and last_page is None:
            return


def _fetch_api_page(ctx: CrawlContext, accept_types: list[str], listing: Listing) -> Fetched:
    return fetch(ctx, listing.url, kind="api", accept_types=accept_types)
