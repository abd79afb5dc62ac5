"""Crawl many stores at once: a thread per group of stores, one store at a time per group.

Crawling is I/O-bound (each store spends most of its time waiting out its own delay), so threads
with blocking requests are enough: `crawl_all` runs up to `concurrency` groups at once. Stores
whose base URLs share a host, or (MEEPO_CRAWL_GROUP_BY_IP) an IP address and port, form one
group and are crawled one after another; requests to any host still go one at a time through
its gate (pipeline.http.gate), which also covers image CDNs shared by several stores.

Each worker thread closes its own database connections when its group is done (Django opens one
per thread). Writes stay short transactions; SQLite's IMMEDIATE mode and busy timeout
(settings.DATABASES) queue concurrent writers instead of failing with "database is locked".

Progress: one tqdm bar for the run, with a status line per finished store above it on a
terminal; without a terminal, one log line per store.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from tqdm import tqdm

from catalog.models import Store
from pipeline.http.gate import release_thread_connections

logger = logging.getLogger(__name__)


def group_stores(stores: Sequence[Store]) -> list[list[Store]]:
    """Stores that share a host (or an IP address and port) in one group, in the given order."""
    parent = list(range(len(stores)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # DNS answers can take seconds each (dead domains): resolve the stores' hosts in parallel.
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="resolve") as pool:
        all_keys = list(pool.map(_server_keys, [s.base_url for s in stores]))
    owner: dict[tuple, int] = {}
    for i, keys in enumerate(all_keys):
        for key in keys:
            if key in owner:
                parent[root(i)] = root(owner[key])
            else:
                owner[key] = i
    groups: dict[int, list[Store]] = {}
    for i, store in enumerate(stores):
        groups.setdefault(root(i), []).append(store)
    return list(groups.values())


def _server_keys(base_url: str) -> set[tuple]:
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    keys: set[tuple] = {("host", host, port)}
    if settings.MEEPO_CRAWL_GROUP_BY_IP and host:
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            infos = []  # unresolvable now: the fetcher will say so for this store
        keys.update(("ip", info[4][0], port) for info in infos)
    return keys


class Progress:
    """One bar per run; per-store lines on a terminal, one log line per store otherwise."""

    def __init__(self, total: int) -> None:
        self.bar = tqdm(total=total, desc="scrape", unit="store", disable=None, file=sys.stderr)
        self.running: set[str] = set()
        self.lock = threading.Lock()

    def started(self, slug: str) -> None:
        with self.lock:
            self.running.add(slug)
            self._postfix()

    def finished(self, slug: str, line: str) -> None:
        with self.lock:
            self.running.discard(slug)
            if self.bar.disable:
                logger.info("%s", line)
            else:
                self.bar.write(line, file=sys.stderr)
                self._postfix()
            self.bar.update(1)

    def _postfix(self) -> None:
        if not self.bar.disable:
            self.bar.set_postfix_str("crawling " + ", ".join(sorted(self.running))[:80])

    def close(self) -> None:
        self.bar.close()


def crawl_all(
    stores: Sequence[Store],
    crawl_one: Callable[[Store], Any],
    *,
    failed: Callable[[Store, str], Any],
    concurrency: int,
) -> list[Any]:
    """Run `crawl_one(store)` for every store, `concurrency` groups at once; results in order.

    `crawl_one` should not raise; if it does anyway (say the database refused the run's final
    write), the store gets `failed(store, reason)` and the others carry on.
    """
    groups = group_stores(stores)
    results: dict[int, Any] = {}
    progress = Progress(len(stores))

    def run_group(group: list[Store], threaded: bool) -> None:
        try:
            for store in group:
                progress.started(store.slug)
                try:
                    result = crawl_one(store)
                except Exception as exc:
                    logger.exception("store %s: crawl failed", store.slug)
                    result = failed(store, f"unexpected error: {type(exc).__name__}: {exc}")
                results[store.pk] = result
                summary = getattr(result, "summary", None)
                progress.finished(store.slug, summary() if callable(summary) else str(result))
        finally:
            if threaded:
                release_thread_connections()

    workers = max(1, min(concurrency, len(groups)))
    try:
        if workers == 1:
            for group in groups:
                run_group(group, threaded=False)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="crawl") as pool:
                for future in [pool.submit(run_group, g, True) for g in groups]:
                    future.result()
    finally:
        progress.close()
    return [results[store.pk] for store in stores]
