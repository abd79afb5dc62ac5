"""Catalogue reads used by the pipeline and the admin."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q, QuerySet

from catalog.models import CrawlRun, FetchState, Host, Product, ProductImage, Store

# Failed image downloads are retried after 1, 2, 4, ... hours, at most this many times.
IMAGE_MAX_ATTEMPTS = 5


def list_stores_to_crawl(*, slug: str | None = None) -> QuerySet[Store]:
    stores = Store.objects.all() if slug else Store.objects.filter(is_active=True)
    return stores.filter(slug=slug) if slug else stores.order_by("slug")


def fetch_states_for_store(*, store: Store) -> dict[str, FetchState]:
    return {fs.url: fs for fs in FetchState.objects.filter(store=store)}


def images_to_download(
    *, store_slug: str | None, now: datetime, retry_failed: bool, limit: int | None = None
) -> QuerySet[ProductImage]:
    """Pending images of active products, plus failed ones whose back-off has passed."""
    due = Q(fetch_status=ProductImage.FetchStatus.PENDING)
    if retry_failed:
        for attempts in range(1, IMAGE_MAX_ATTEMPTS):
            due |= Q(
                fetch_status=ProductImage.FetchStatus.FAILED,
                fetch_attempts=attempts,
                last_fetched_at__lte=now - timedelta(hours=2 ** (attempts - 1)),
            )
    qs = ProductImage.objects.filter(due, product__is_active=True).select_related("product__store")
    if store_slug:
        qs = qs.filter(product__store__slug=store_slug)
    qs = qs.order_by("product__store_id", "product_id", "position")
    return qs[:limit] if limit else qs


def latest_crawl_run(*, store: Store) -> CrawlRun | None:
    return CrawlRun.objects.filter(store=store).order_by("-started_at").first()


def count_products_missing_from(*, store: Store, seen_ids: set[str]) -> int:
    """Active products of `store` not in `seen_ids`: what a real run would deactivate (dry run)."""
    active = Product.objects.filter(store=store, is_active=True).values_list(
        "external_id", flat=True
    )
    return sum(1 for ext in active.iterator() if ext not in seen_ids)


def host_for_store(*, store: Store) -> Host | None:
    """The politeness state of the store's own origin (the crawler keys hosts by origin)."""
    return Host.objects.filter(origin=store.base_url.rstrip("/").lower()).first()
