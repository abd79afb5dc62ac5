"""Shared crawl state for platform modules: the fetcher, stored validators, limits, fetch helper."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from catalog.models import FetchState, Store
from pipeline.http import Fetcher, FetchResult, HostBlocked, RobotsUnavailable
from pipeline.platforms.base import FetchRecord

# Errors that end the whole store's crawl rather than one URL.
STOP_ERRORS = (HostBlocked, RobotsUnavailable)


@dataclass
class CrawlContext:
    fetcher: Fetcher
    store: Store
    states: dict[str, FetchState] = field(default_factory=dict)
    force: bool = False
    limit: int | None = None
    seen: int = 0  # products handled so far (for --limit)

    @property
    def base_url(self) -> str:
        return self.store.base_url.rstrip("/")

    def limit_reached(self) -> bool:
        return self.limit is not None and self.seen >= self.limit

    def previous(self, url: str) -> FetchState | None:
        return self.states.get(url)

    def previous_items(self, url: str) -> list:
        state = self.previous(url)
        return list(state.items) if state and isinstance(state.items, list) else []


@dataclass
class Fetched:
    result: FetchResult
    unchanged: bool  # 304, or the same bytes as last time
    record: FetchRecord


def fetch(
    ctx: CrawlContext, url: str, *, kind: str, accept_types: Iterable[str] | None = None
) -> Fetched:
    """Conditional GET through the polite fetcher; `unchanged` when nothing new came back.

    A URL whose last answer could not be used (its record carries an error: an unreadable API
    page, a soft 404) is asked again in full and never counts as unchanged: its stored items are
    not a listing, and taking them as one would deactivate every product it used to list.
    """
    state = None if ctx.force else ctx.previous(url)
    if state is not None and state.error:
        state = None
    result = ctx.fetcher.get(
        url,
        kind=kind,
        accept_types=accept_types,
        etag=state.etag if state else "",
        last_modified=state.last_modified if state else "",
    )
    if result.not_modified and state is not None:
        record = FetchRecord(
            url,
            304,
            result.etag or state.etag,
            result.last_modified or state.last_modified,
            state.body_sha256,
        )
        return Fetched(result, True, record)
    digest = hashlib.sha256(result.body).hexdigest()
    record = FetchRecord(url, result.status, result.etag, result.last_modified, digest)
    same = state is not None and state.status_code in (200, 304) and state.body_sha256 == digest
    return Fetched(result, same, record)
