"""Stores and their crawl bookkeeping: create and pause a store, start and finish a CrawlRun,
mark runs a dead process left "running", remember each URL's validators (FetchState)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from django.db import transaction
from django.utils import timezone

from catalog.models import (
    CrawlRun,
    FetchState,
    Store,
)

MAX_RUN_ERRORS = 50


class FetchedURL(Protocol):
    """What the crawler remembers about one fetched URL (pipeline.platforms.base.FetchRecord)."""

    url: str
    status: int | None
    etag: str
    last_modified: str
    body_sha256: str
    items: list
    error: str


def record_fetch_states(
    *, store: Store, records: Iterable[FetchedURL], fetched_at: datetime
) -> None:
    """Remember validators and listed items per URL, one FetchState row each (upserted)."""
    rows = [
        FetchState(
            store=store,
            url=r.url[:2000],
            etag=r.etag[:500],
            last_modified=r.last_modified[:100],
            body_sha256=r.body_sha256,
            status_code=r.status,
            fetched_at=fetched_at,
            items=r.items,
            error=r.error[:500],
            failures=1 if r.error else 0,
        )
        for r in records
    ]
    if not rows:
        return
    FetchState.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["store", "url"],
        update_fields=[
            "etag",
            "last_modified",
            "body_sha256",
            "status_code",
            "fetched_at",
            "items",
            "error",
            "failures",
            "updated_at",
        ],
    )


def start_crawl_run(*, store: Store) -> CrawlRun:
    return CrawlRun.objects.create(store=store, started_at=timezone.now())


def mark_interrupted_runs() -> int:
    """Runs still "running" when a scrape starts under the pipeline lock died with their process
    (kill -9, power cut): say so instead of leaving them running forever."""
    return CrawlRun.objects.filter(status=CrawlRun.Status.RUNNING).update(
        status=CrawlRun.Status.INTERRUPTED,
        finished_at=timezone.now(),
        errors=[{"url": "", "reason": "the process ended before the run finished"}],
        updated_at=timezone.now(),
    )


def finish_crawl_run(
    *, run: CrawlRun, status: str, errors: Sequence[dict], **counts: int
) -> CrawlRun:
    for name, value in counts.items():
        setattr(run, name, value)
    run.status = status
    run.errors = list(errors)[:MAX_RUN_ERRORS]
    run.finished_at = timezone.now()
    with transaction.atomic():
        run.save()
        if status in (CrawlRun.Status.SUCCEEDED, CrawlRun.Status.PARTIAL):
            Store.objects.filter(pk=run.store_id).update(last_crawled_at=run.finished_at)
    return run


def create_store(*, name: str, slug: str, base_url: str, platform: str, **extra: object) -> Store:
    store = Store(name=name, slug=slug, base_url=base_url, platform=platform, **extra)
    store.full_clean()
    store.save()
    return store


def pause_store(*, store: Store, until: datetime | None) -> None:
    """Remember (or clear) a site's request to be left alone until `until`."""
    Store.objects.filter(pk=store.pk).update(paused_until=until)
    store.paused_until = until
