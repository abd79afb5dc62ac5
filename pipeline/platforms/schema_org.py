"""Any other store: sitemaps to find product pages, schema.org markup on each page.

Sitemaps come from robots.txt `Sitemap:` lines (else /sitemap.xml); in an index only children
whose URL says "product" are followed when there are any. Sitemaps are streamed: each page URL is
visited as soon as it is read, deduplicated on the fly, and the walk stops at
MEEPO_MAX_URLS_PER_STORE page URLs and MEEPO_MAX_SITEMAPS_PER_STORE sitemap files, so memory
stays flat however many URLs a store lists. Sitemaps and pages on hosts that are not the store's
(`pipeline.http.safety.store_hosts`) are skipped with a reason. A page whose sitemap `lastmod`
is not newer than our last fetch is not requested at all; others get a conditional GET. A page
with no product markup (a soft 404, a blog post) is a counted, logged failure.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime

from django.conf import settings
from django.utils.dateparse import parse_date, parse_datetime

from pipeline.exceptions import FetchError
from pipeline.http import HttpError
from pipeline.http.safety import is_store_url, off_store_reason, store_hosts
from pipeline.platforms.base import Failure, Listing
from pipeline.platforms.context import STOP_ERRORS, CrawlContext, fetch
from pipeline.platforms.sitemaps import SitemapEntry, iter_sitemap
from pipeline.platforms.structured import extract_products, page_title

logger = logging.getLogger(__name__)
MAX_DEPTH = 3
HTML = ["text/html", "application/xhtml+xml"]


def detect(ctx: CrawlContext) -> bool:
    """Fallback platform: usable when the sitemap or home page answers."""
    hosts = _hosts(ctx)
    for url in (*sitemap_urls(ctx), ctx.base_url + "/"):
        if not is_store_url(url, hosts):
            continue
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


def _hosts(ctx: CrawlContext) -> frozenset[str]:
    return store_hosts(ctx.store.base_url, ctx.store.extra_hosts)


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


class _SitemapWalk:
    """One store's sitemaps, breadth first, streamed: yields each new page entry as it is read
    and, after each sitemap, a Listing with its fetch record and failures."""

    def __init__(self, ctx: CrawlContext) -> None:
        self.ctx, self.hosts = ctx, _hosts(ctx)
        self.max_urls = settings.MEEPO_MAX_URLS_PER_STORE
        self.max_sitemaps = settings.MEEPO_MAX_SITEMAPS_PER_STORE
        self.queue: deque[tuple[str, int]] = deque()
        self.queued: set[str] = set()
        self.seen: set[bytes] = set()  # 16-byte digests of page URLs: dedupe in bounded memory
        self.full = False  # the URL cap was reached

    def run(self) -> Iterator[Listing | SitemapEntry]:
        head = Listing(self.ctx.base_url + "/sitemap")
        self._enqueue(sitemap_urls(self.ctx), 0, head)
        yield head
        while self.queue and not self.full:
            url, depth = self.queue.popleft()
            listing = Listing(url)
            yield from self._read(url, depth, listing)
            yield listing
        if self.full:
            tail = Listing(self.ctx.base_url + "/sitemap", complete=False)
            reason = (
                f"stopped after {self.max_urls} page URLs (MEEPO_MAX_URLS_PER_STORE); the rest "
                "of the store's sitemaps was not read"
            )
            tail.failures.append(Failure(self.ctx.base_url + "/sitemap", reason))
            yield tail

    def _enqueue(self, urls: list[str], depth: int, listing: Listing) -> None:
        off_host = [u for u in urls if not is_store_url(u, self.hosts)]
        skip = self.queued.union(off_host)
        fresh = [u for u in dict.fromkeys(urls) if u not in skip]
        room = max(0, self.max_sitemaps - len(self.queued))
        for url in fresh[:room]:
            self.queued.add(url)
            self.queue.append((url, depth))
        if off_host:
            reason = (
                f"{len(off_host)} sitemap(s) skipped: {off_store_reason(off_host[0], self.hosts)}"
            )
            listing.failures.append(Failure(off_host[0], reason))
        if len(fresh) > room:
            reason = (
                f"{len(fresh) - room} sitemap(s) beyond MEEPO_MAX_SITEMAPS_PER_STORE="
                f"{self.max_sitemaps} skipped"
            )
            listing.fail(fresh[room], reason)

    def _read(self, url: str, depth: int, listing: Listing) -> Iterator[SitemapEntry]:
        try:
            fetched = fetch(self.ctx, url, kind="sitemap")
        except STOP_ERRORS:
            raise
        except FetchError as exc:
            listing.fail(url, f"sitemap: {exc}")
            return
        listing.records.append(fetched.record)
        if fetched.unchanged:
            stored = self.ctx.previous_items(url)
            kind = "index" if stored and stored[0] == "index" else "urlset"
            entries = ((kind == "index", SitemapEntry(*e)) for e in stored[1:])
        else:
            entries = iter_sitemap(fetched.result.body)
        kept: list[list[str]] = []  # what the fetch record stores for a 304 next time
        children: list[str] = []
        off_host, first_off, is_index = 0, "", False
        try:
            for is_index, entry in entries:
                entry.loc = entry.loc.partition("#")[0]  # a fragment names the same page
                if not is_store_url(entry.loc, self.hosts):
                    off_host, first_off = off_host + 1, first_off or entry.loc
                elif is_index:
                    children.append(entry.loc)
                    kept.append([entry.loc, entry.lastmod])
                elif self._admit(entry.loc):
                    kept.append([entry.loc, entry.lastmod])
                    yield entry
                elif self.full:
                    break
        except FetchError as exc:
            listing.fail(url, str(exc))
            fetched.record.error = str(exc)
            self._forget_validators(fetched.record)
        if self.full or off_host:
            # Read in part, or filtered by today's store hosts: read it all again next time.
            self._forget_validators(fetched.record)
        fetched.record.items = ["index" if is_index else "urlset", *kept]
        if off_host:
            reason = f"{off_host} URL(s) skipped: {off_store_reason(first_off, self.hosts)}"
            listing.failures.append(Failure(first_off, reason))
        if children and depth < MAX_DEPTH:
            products = [c for c in children if "product" in c.lower()]
            self._enqueue(products or children, depth + 1, listing)

    def _admit(self, loc: str) -> bool:
        """True for a page URL not seen yet and within the cap (which sets `full` when hit)."""
        if not loc.startswith(("http://", "https://")):
            return False
        key = hashlib.blake2b(loc.encode("utf-8", "replace"), digest_size=16).digest()
        if key in self.seen:
            return False
        if len(self.seen) >= self.max_urls:
            self.full = True
            return False
        self.seen.add(key)
        return True

    @staticmethod
    def _forget_validators(record) -> None:
        record.etag = record.last_modified = record.body_sha256 = ""


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
        fetched = fetch(ctx, url, kind="page", accept_types=HTML)
    except STOP_ERRORS:
        raise
    except FetchError as exc:
        listing.failures.append(Failure(url, str(exc)))
        gone = isinstance(exc, HttpError) and exc.status in (404, 410)
        if not gone:
            listing.kept_ids = ctx.previous_items(url)
        return listing
    listing.records.append(fetched.record)
    if fetched.unchanged and state is not None:
        listing.unchanged_ids = fetched.record.items = ctx.previous_items(url)
        return listing
    if not is_store_url(fetched.result.url, hosts := _hosts(ctx)):
        # Redirected to another site: its markup must not be attributed to this store.
        reason = f"redirected to {fetched.result.url[:200]}: {off_store_reason(fetched.result.url, hosts)}"
        listing.failures.append(Failure(url, reason))
        fetched.record.error = reason
        return listing
    content_type = fetched.result.headers.get("Content-Type", "")
    products, notes = extract_products(
        fetched.result.body, fetched.result.url, content_type=content_type
    )
    for note in notes:
        logger.info("%s: %s", url, note)
    if not products:
        title = page_title(fetched.result.body, content_type)
        reason = f"no product data on page (soft 404?); title {title!r}"
        listing.failures.append(Failure(url, reason))
        fetched.record.error = reason
        return listing
    listing.products = products
    fetched.record.items = [p.external_id for p in products]
    return listing


def iter_listings(ctx: CrawlContext) -> Iterator[Listing]:
    for item in _SitemapWalk(ctx).run():
        if isinstance(item, Listing):
            yield item
        elif ctx.limit_reached():
            return
        else:
            yield _page_listing(ctx, item)
