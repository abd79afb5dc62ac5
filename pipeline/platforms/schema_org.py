"""Any other store: sitemaps to find product pages, schema.org markup on each page.

Sitemaps come from robots.txt `Sitemap:` lines (else /sitemap.xml); in an index only children
whose URL says "product" are followed when there are any. A page whose sitemap `lastmod` is not
newer than our last fetch is not requested at all; others get a conditional GET. A page with no
product markup (a soft 404, a blog post) is a counted, logged failure.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

from django.utils.dateparse import parse_date, parse_datetime

from pipeline.exceptions import FetchError
from pipeline.http import HttpError
from pipeline.platforms.base import Failure, Listing
from pipeline.platforms.context import STOP_ERRORS, CrawlContext, fetch
from pipeline.platforms.sitemaps import SitemapEntry, parse_sitemap
from pipeline.platforms.structured import extract_products, page_title

logger = logging.getLogger(__name__)
MAX_SITEMAPS = 50
MAX_DEPTH = 3
HTML = ["text/html", "application/xhtml+xml"]


def detect(ctx: CrawlContext) -> bool:
    """Fallback platform: usable when the sitemap or home page answers."""
    for url in (*sitemap_urls(ctx), ctx.base_url + "/"):
        try:
            ctx.fetcher.get(url, kind="sitemap" if "sitemap" in url else "page")
            return True
        except STOP_ERRORS:
            raise
        except FetchError:
            continue
    return False


def sitemap_urls(ctx: CrawlContext) -> list[str]:
    listed = ctx.fetcher.robots_rules(ctx.base_url + "/").sitemaps()
    return listed or [ctx.base_url + "/sitemap.xml"]


def _lastmod(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parse_datetime(value)
        if parsed is None and (day := parse_date(value)):
            parsed = datetime(day.year, day.month, day.day, tzinfo=UTC)
    except ValueError:
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _read_sitemaps(ctx: CrawlContext, listing: Listing) -> list[SitemapEntry]:
    """All page entries of the store's sitemaps; failures are noted on `listing`."""
    queue = [(url, 0) for url in sitemap_urls(ctx)]
    pages: list[SitemapEntry] = []
    done: set[str] = set()
    while queue and len(done) < MAX_SITEMAPS:
        url, depth = queue.pop(0)
        if url in done:
            continue
        done.add(url)
        try:
            got = fetch(ctx, url, kind="sitemap")
        except STOP_ERRORS:
            raise
        except FetchError as exc:
            listing.failures.append(Failure(url, f"sitemap: {exc}"))
            listing.complete = False
            continue
        listing.records.append(got.record)
        if got.unchanged:
            stored = ctx.previous_items(url)
            is_index = bool(stored) and stored[0] == "index"
            entries = [SitemapEntry(*e) for e in stored[1:]]
        else:
            try:
                sitemap = parse_sitemap(got.result.body)
            except FetchError as exc:
                listing.failures.append(Failure(url, str(exc)))
                listing.complete = False
                got.record.error = str(exc)
                continue
            is_index, entries = sitemap.is_index, sitemap.entries
        got.record.items = [
            "index" if is_index else "urlset",
            *[[e.loc, e.lastmod] for e in entries],
        ]
        if is_index and depth < MAX_DEPTH:
            children = [e.loc for e in entries]
            products = [c for c in children if "product" in c.lower()]
            queue += [(c, depth + 1) for c in (products or children)]
        elif not is_index:
            pages += entries
    return pages


def _page_listing(ctx: CrawlContext, entry: SitemapEntry) -> Listing:
    url = entry.loc
    listing = Listing(url)
    state = None if ctx.force else ctx.previous(url)
    lastmod = _lastmod(entry.lastmod)
    fresh = state and state.status_code in (200, 304) and state.items and state.fetched_at
    # lastmod has whole seconds at best: a page changed later in the second we fetched it carries
    # the same stamp, so only a lastmod strictly before that second proves it unchanged.
    if fresh and lastmod and lastmod < state.fetched_at.replace(microsecond=0):
        listing.unchanged_ids = ctx.previous_items(url)  # sitemap says: not modified since
        return listing
    try:
        got = fetch(ctx, url, kind="page", accept_types=HTML)
    except STOP_ERRORS:
        raise
    except FetchError as exc:
        listing.failures.append(Failure(url, str(exc)))
        gone = isinstance(exc, HttpError) and exc.status in (404, 410)
        if not gone:
            listing.kept_ids = ctx.previous_items(url)
        return listing
    listing.records.append(got.record)
    if got.unchanged and state is not None:
        listing.unchanged_ids = got.record.items = ctx.previous_items(url)
        return listing
    products, notes = extract_products(
        got.result.body, got.result.url, content_type=got.result.headers.get("Content-Type", "")
    )
    for note in notes:
        logger.info("%s: %s", url, note)
    if not products:
        title = page_title(got.result.body)
        reason = f"no product data on page (soft 404?); title {title!r}"
        listing.failures.append(Failure(url, reason))
        got.record.error = reason
        return listing
    listing.products = products
    got.record.items = [p.external_id for p in products]
    return listing


def iter_listings(ctx: CrawlContext) -> Iterator[Listing]:
    head = Listing(ctx.base_url + "/sitemap")
    entries = _read_sitemaps(ctx, head)
    yield head
    seen: set[str] = set()
    for entry in entries:
        if ctx.limit_reached():
            return
        if entry.loc in seen or not entry.loc.startswith(("http://", "https://")):
            continue
        seen.add(entry.loc)
        yield _page_listing(ctx, entry)
