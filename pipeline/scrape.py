"""Stage 1: register stores and crawl them into the catalogue, politely.

`add_store(url)` detects the platform (Shopify API, WooCommerce Store API, else sitemaps +
schema.org pages) and records it. `scrape_stores()` crawls each active store: listing pages are
fetched conditionally (ETag/Last-Modified, sitemap lastmod, body hash), each page is written in
its own short transaction, products missing from a complete listing become inactive, and images
are downloaded through the same polite fetcher (scrape is the one owner of image downloads;
`embed` only embeds). Re-running changes nothing when the stores have not changed. A store that
stops us (robots.txt, 401/403, long Retry-After or Crawl-delay, open circuit, off-peak window)
ends as "stopped", and one that raises anything else as "failed", without touching the others.
Up to MEEPO_CRAWL_CONCURRENCY stores are crawled at once (pipeline.crawl_pool); every request
still waits its turn at its host's gate (pipeline.http.gate). `--dry-run` runs the same
classifier as the real run and reports the same counts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from catalog import selectors, services
from catalog.models import CrawlRun, Store
from pipeline.crawl_pool import crawl_all
from pipeline.exceptions import FetchError, ScrapeFailed
from pipeline.http import Fetcher
from pipeline.http.hosts import in_daily_window
from pipeline.http.safety import is_store_url, off_store_reason, store_hosts
from pipeline.images import ImageReport, download_images
from pipeline.platforms import PLATFORMS, detect_platform
from pipeline.platforms.base import Failure, Listing, validate
from pipeline.platforms.context import STOP_ERRORS, CrawlContext
from pipeline.platforms.sanitize import clean_listing, clean_value

logger = logging.getLogger(__name__)


@dataclass
class StoreReport:
    store: str
    status: str = CrawlRun.Status.SUCCEEDED
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    deactivated: int = 0
    requests: int = 0
    not_modified: int = 0
    bytes_received: int = 0
    message: str = ""
    errors: list[dict] = field(default_factory=list)
    images: ImageReport = field(default_factory=ImageReport)
    seen_ids: set[str] = field(default_factory=set, repr=False)  # what a dry run would keep

    def summary(self) -> str:
        line = (
            f"{self.store}: {self.status}, {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.failed} failed, {self.deactivated} deactivated; "
            f"{self.images.summary()}; {self.requests} requests"
        )
        return f"{line} ({self.message})" if self.message else line


@dataclass
class ScrapeReport:
    stores: list[StoreReport] = field(default_factory=list)
    dry_run: bool = False

    def total(self, name: str) -> int:
        """One StoreReport count summed over the stores."""
        return sum(getattr(s, name) for s in self.stores)

    created = property(lambda self: self.total("created"))
    updated = property(lambda self: self.total("updated"))
    unchanged = property(lambda self: self.total("unchanged"))
    failed = property(lambda self: self.total("failed"))

    def summary(self) -> str:
        n = len(self.stores)
        prefix = "dry run, " if self.dry_run else ""
        kib = self.total("bytes_received") / 1024
        return (
            f"{prefix}{n} store{'s' * (n != 1)}: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.failed} failed, {self.total('deactivated')} deactivated"
            f" ({self.total('requests')} requests, {self.total('not_modified')} not modified, "
            f"{kib:.1f} KiB)"
        )


# --- add_store -------------------------------------------------------------------------------


def add_store(
    url: str,
    *,
    name: str | None = None,
    slug: str | None = None,
    crawl_delay: float | None = None,
    contact_email: str = "",
    platform: str | None = None,
    allow_long_crawl_delay: bool = False,
    extra_hosts: str = "",
) -> Store:
    """Register a store, detecting its platform unless given. Raises ScrapeFailed.

    `extra_hosts`: the store's other host names (comma-separated), see Store.extra_hosts.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ScrapeFailed(f"not an http(s) store URL: {url!r}")
    base_url = f"{parts.scheme}://{parts.netloc.lower()}"
    if Store.objects.filter(base_url=base_url).exists():
        raise ScrapeFailed(f"a store with base URL {base_url} already exists")
    store = Store(
        name=name or parts.hostname,
        slug=slug or _default_slug(parts.netloc),
        base_url=base_url,
        crawl_delay=crawl_delay,
        extra_hosts=extra_hosts,
    )
    if platform is None:
        platform = _detect(store, allow_long_crawl_delay=allow_long_crawl_delay)
    try:
        return services.create_store(
            name=store.name,
            slug=store.slug,
            base_url=base_url,
            platform=platform,
            crawl_delay=crawl_delay,
            contact_email=contact_email,
            allow_long_crawl_delay=allow_long_crawl_delay,
            extra_hosts=extra_hosts,
        )
    except ValidationError as exc:
        raise ScrapeFailed(f"invalid store: {'; '.join(exc.messages)}") from exc
    except IntegrityError as exc:
        raise ScrapeFailed(f"cannot save store: {exc}") from exc


def _detect(store: Store, *, allow_long_crawl_delay: bool) -> str:
    """The platform of an unsaved store (one robots.txt and a few probes); raises ScrapeFailed."""
    with Fetcher(delay=store.crawl_delay, allow_long_delay=allow_long_crawl_delay) as fetcher:
        try:
            platform = detect_platform(CrawlContext(fetcher, store))
        except STOP_ERRORS as exc:
            raise ScrapeFailed(f"{store.base_url} cannot be crawled: {exc}") from exc
    if not platform:
        raise ScrapeFailed(
            f"{store.base_url}: no products.json, no Store API, no sitemap or home page"
        )
    return platform


def _default_slug(netloc: str) -> str:
    """shop.example.com -> shop-example-com; 127.0.0.1:8001 -> 127-0-0-1-8001."""
    host = netloc.lower().removeprefix("www.")
    return slugify(host.replace(".", "-").replace(":", "-"))[:100] or "store"


# --- off-peak window -------------------------------------------------------------------------


def seconds_until_window(store: Store, now: datetime) -> float:
    """0 inside the store's off-peak window (or when it has none), else seconds until it opens."""
    start, end = store.offpeak_start, store.offpeak_end
    if start is None or end is None:
        return 0.0
    t = now.timetz().replace(tzinfo=None)
    if in_daily_window(t, start, end):
        return 0.0
    opens = now.replace(
        hour=start.hour, minute=start.minute, second=start.second, microsecond=start.microsecond
    )
    if opens <= now:
        opens += timedelta(days=1)
    return (opens - now).total_seconds()


# --- scrape ------------------------------------------------------------------------------------


def _valid_items(ctx: CrawlContext, listing: Listing) -> list:
    """The listing's products that may be stored; the others become failures of the listing."""
    clean_listing(listing)  # lone surrogates, controls, bidi overrides: before any write
    hosts = store_hosts(ctx.store.base_url, ctx.store.extra_hosts)
    items = []
    for product in listing.products:
        reason = validate(product)
        if reason is None and not is_store_url(product.url, hosts):
            reason = (
                f"product URL {product.url[:200]} refused: {off_store_reason(product.url, hosts)}"
            )
        if reason:
            listing.failures.append(
                Failure(product.url or product.external_id or listing.url, reason)
            )
            continue
        items.append(product)
    clean_value(items)  # validate's unescaping may have produced some again
    return items


def _within_limit(ctx: CrawlContext, listing: Listing, items: list) -> tuple[list, bool]:
    """`items` (and listing.unchanged_ids) cut to what --limit leaves; True when cut."""
    if ctx.limit is None:
        return items, False
    room = max(0, ctx.limit - ctx.seen)
    before = len(items) + len(listing.unchanged_ids)
    items = items[:room]
    listing.unchanged_ids = listing.unchanged_ids[: max(0, room - len(items))]
    return items, len(items) + len(listing.unchanged_ids) < before


def _apply_listing(ctx: CrawlContext, listing: Listing, report: StoreReport, dry_run: bool) -> None:
    items, truncated = _within_limit(ctx, listing, _valid_items(ctx, listing))
    ctx.seen += len(items) + len(listing.unchanged_ids)
    report.seen_ids.update(i.external_id for i in items)
    report.seen_ids.update((*listing.unchanged_ids, *listing.kept_ids))
    now = timezone.now()
    if dry_run:  # the same classifier and the same counting as the writes below
        counts = services.classify_products(store=ctx.store, items=items)
        report.unchanged += services.count_existing_products(
            store=ctx.store, external_ids=listing.unchanged_ids
        )
    else:
        # One short transaction per listing page: products, seen marks and validators together.
        with transaction.atomic():
            counts = services.upsert_products(store=ctx.store, items=items, seen_at=now)
            report.unchanged += services.touch_products(
                store=ctx.store, external_ids=listing.unchanged_ids, seen_at=now
            )
            services.touch_products(store=ctx.store, external_ids=listing.kept_ids, seen_at=now)
            if not truncated:  # a page cut short by --limit must be read in full next time
                services.record_fetch_states(
                    store=ctx.store, records=listing.records, fetched_at=now
                )
    report.created += counts.created
    report.updated += counts.updated
    report.unchanged += counts.unchanged
    for failure in listing.failures:
        logger.warning("store %s: skipped %s: %s", ctx.store.slug, failure.ref, failure.reason)
        report.failed += 1
        report.errors.append({"url": failure.ref[:500], "reason": failure.reason[:500]})


def _crawl(ctx: CrawlContext, report: StoreReport, dry_run: bool) -> bool:
    """Walk the store's listings; True when the listing was complete (safe to deactivate)."""
    module = PLATFORMS.get(ctx.store.platform)
    if module is None:
        raise ScrapeFailed(f"store {ctx.store.slug} has no detected platform; run add_store again")
    complete = True
    for listing in module.iter_listings(ctx):
        _apply_listing(ctx, listing, report, dry_run)
        complete &= listing.complete
        if seconds_until_window(ctx.store, timezone.now()) > 0:
            report.status, report.message = CrawlRun.Status.STOPPED, "off-peak window closed"
            return False
    # A capped crawl that hit its cap has not seen the whole store: deactivate nothing then.
    return complete and not ctx.limit_reached()


def scrape_store(
    store: Store, *, limit: int | None = None, dry_run: bool = False, force: bool = False
) -> StoreReport:
    """Crawl one store. Never raises: an unexpected error fails this store's run, logged with its
    traceback and recorded on its CrawlRun (status failed, the reason), and nothing else."""
    report = StoreReport(store.slug)
    if store.paused_until and store.paused_until > timezone.now() and not force:
        report.status = CrawlRun.Status.STOPPED
        report.message = f"the site asked us to wait until {store.paused_until:%Y-%m-%d %H:%M} UTC"
        return report
    wait = seconds_until_window(store, timezone.now())
    if wait and store.offpeak_mode == Store.OffPeakMode.STOP:
        report.status, report.message = CrawlRun.Status.STOPPED, "outside the off-peak window"
        return report
    if wait:
        logger.info("store %s: waiting %.0fs for its off-peak window", store.slug, wait)
        time.sleep(wait + 0.01)
    run = None if dry_run else services.start_crawl_run(store=store)
    try:
        _scrape_into(report, store, limit=limit, dry_run=dry_run, force=force)
    except Exception as exc:  # isolation: one store's bug must not end the other stores' crawl
        logger.exception("store %s: failed with an unexpected error", store.slug)
        report.status = CrawlRun.Status.FAILED
        report.message = _printable(f"unexpected error: {type(exc).__name__}: {exc}")[:500]
        report.errors.insert(0, {"url": store.base_url, "reason": report.message})
    if report.status == CrawlRun.Status.SUCCEEDED and (report.failed or report.images.failed):
        report.status = CrawlRun.Status.PARTIAL
    if run is not None:
        services.finish_crawl_run(
            run=run,
            status=report.status,
            errors=report.errors,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            failed=report.failed + report.images.failed,
            deactivated=report.deactivated,
            requests=report.requests,
            not_modified=report.not_modified,
            bytes_received=report.bytes_received,
        )
    return report


def _printable(text: str) -> str:
    """Lone surrogates from a hostile page cannot be stored as UTF-8: replace them."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _scrape_into(
    report: StoreReport, store: Store, *, limit: int | None, dry_run: bool, force: bool
) -> None:
    started = timezone.now()
    fetcher = Fetcher(delay=store.crawl_delay, allow_long_delay=store.allow_long_crawl_delay)
    try:
        caps = [n for n in (limit, store.max_products) if n]
        states = selectors.fetch_states_for_store(store=store)
        ctx = CrawlContext(fetcher, store, states, force, min(caps) if caps else None)
        try:
            complete = _crawl(ctx, report, dry_run)
        except STOP_ERRORS as exc:
            complete = False
            report.status, report.message = CrawlRun.Status.STOPPED, str(exc)
            retry_after = getattr(exc, "retry_after", None)
            if retry_after and not dry_run:
                until = timezone.now() + timedelta(seconds=retry_after)
                services.pause_store(store=store, until=until)
        except (ScrapeFailed, FetchError) as exc:
            complete = False
            report.status, report.message = CrawlRun.Status.FAILED, str(exc)
        if report.message:
            logger.warning("store %s: %s", store.slug, report.message)
            report.errors.insert(0, {"url": store.base_url, "reason": report.message[:500]})
        if complete and report.status == CrawlRun.Status.SUCCEEDED:
            report.deactivated = (
                selectors.count_products_missing_from(store=store, seen_ids=report.seen_ids)
                if dry_run
                else services.deactivate_missing_products(store=store, seen_since=started)
            )
        if report.status != CrawlRun.Status.STOPPED:
            report.images = download_images(store_slug=store.slug, dry_run=dry_run, fetcher=fetcher)
    finally:
        fetcher.close()
        stats = fetcher.stats
        report.requests, report.not_modified = stats.requests, stats.not_modified
        report.bytes_received = stats.bytes_received


def scrape_stores(
    *,
    store_slug: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    force: bool = False,
    concurrency: int | None = None,
) -> ScrapeReport:
    """Crawl every active store (or one), up to `concurrency` (MEEPO_CRAWL_CONCURRENCY) at once.

    Call it under the pipeline lock (the `scrape` and `pipeline` commands do): runs still marked
    "running" from a killed process are marked "interrupted" first. Raises ScrapeFailed for an
    unknown --store slug; a store's own failure only fails that store.
    """
    stores = list(selectors.list_stores_to_crawl(slug=store_slug))
    if store_slug and not stores:
        raise ScrapeFailed(f"no store with slug {store_slug!r}")
    if not dry_run and (interrupted := services.mark_interrupted_runs()):
        logger.warning("%d crawl runs of a killed process marked interrupted", interrupted)
    report = ScrapeReport(dry_run=dry_run)
    report.stores = crawl_all(
        stores,
        lambda store: scrape_store(store, limit=limit, dry_run=dry_run, force=force),
        failed=lambda store, message: StoreReport(
            store.slug, status=CrawlRun.Status.FAILED, message=message
        ),
        concurrency=concurrency or settings.MEEPO_CRAWL_CONCURRENCY,
    )
    return report
