"""The per-host gate: one request at a time per origin, across threads and processes.

Politeness is state, not code: each origin's robots.txt (cached at most 24 hours, RFC 9309),
the end of its last answer, its delays, parking and failures live in `catalog.models.Host`, so
`add_store`, `scrape` (every store thread) and image downloads all see the same host.

`host_turn(origin)` takes a thread lock and an exclusive flock on
MEEPO_DATA_DIR/locks/hosts/<hash>.lock (the kernel queues waiters from every process and frees
the lock of a killed one) or, in distributed mode (MEEPO_BROKER_URL set), the Redis lock
`meepo:lock:host:<hash>` that every machine shares (pipeline.distributed.locks); loads the Host
row into a `HostState`, yields it, and writes it back in one short statement, even when the body
raises. The fetcher waits the gap, sends, reads and records the outcome inside one turn, so the
gap measured on the wire holds whoever asks next.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connections

from catalog.models import Host
from pipeline.http.hosts import HostState
from pipeline.http.robots import RobotsRules
from pipeline.http.robots import rules_from_response as _rules

_GATE_FIELDS = (
    "last_request_at",
    "current_delay",
    "throttle_delay",
    "backoff_delay",
    "successes_since_backoff",
    "parked_until",
    "consecutive_failures",
    "reason",
    "requests",
)
# Distributed mode: a host's Redis gate lock lapses this long after its holder died (it is
# renewed while a live holder waits out a gap or reads a slow answer).
GATE_LOCK_TTL = 30.0
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _thread_lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def _lock_file(origin: str) -> Path:
    name = hashlib.sha256(origin.encode()).hexdigest()[:24]
    return Path(settings.MEEPO_DATA_DIR) / "locks" / "hosts" / f"{name}.lock"


@contextmanager
def exclusive(origin: str, tag: str = "") -> Iterator[None]:
    """Hold the origin's lock (`tag` names a second, independent lock such as robots refresh)."""
    key = origin + tag
    with _thread_lock(key):
        if settings.MEEPO_BROKER_URL:
            # Distributed mode: workers on other machines share no kernel to flock with.
            from pipeline.distributed.locks import redis_lock

            with redis_lock("host:" + _lock_file(key).stem, ttl=GATE_LOCK_TTL, label=key):
                yield
            return
        path = _lock_file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks; released by close() or process death
            yield
        finally:
            os.close(fd)


@contextmanager
def host_turn(origin: str) -> Iterator[HostState]:
    """The gate: exclusive use of `origin`, with its state loaded before and saved after."""
    with exclusive(origin):
        state = load_host(origin)
        try:
            yield state
        finally:
            save_host(state)


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value else None


def load_host(origin: str) -> HostState:
    row = Host.objects.filter(origin=origin).first()
    if row is None:
        return HostState(origin)
    return HostState(
        host=origin,
        robots_delay=row.robots_delay,
        throttle=row.throttle_delay,
        backoff_floor=row.backoff_delay,
        last_done=_ts(row.last_request_at),
        parked_until=_ts(row.parked_until) or 0.0,
        consecutive_failures=row.consecutive_failures,
        successes_since_backoff=row.successes_since_backoff,
        reason=row.reason,
        current_delay=row.current_delay,
        requests=row.requests,
    )


def save_host(state: HostState) -> None:
    row = Host(
        origin=state.host,
        last_request_at=_dt(state.last_done),
        current_delay=state.current_delay,
        throttle_delay=state.throttle,
        backoff_delay=state.backoff_floor,
        successes_since_backoff=state.successes_since_backoff,
        parked_until=_dt(state.parked_until),
        consecutive_failures=state.consecutive_failures,
        reason=state.reason[:500],
        requests=state.requests,
    )
    # One upsert statement: a short write transaction, robots fields left as they are.
    Host.objects.bulk_create(
        [row], update_conflicts=True, unique_fields=["origin"], update_fields=[*_GATE_FIELDS]
    )


def cached_robots(origin: str, *, now: float) -> RobotsRules | None:
    """The stored robots.txt rules of `origin` while still fresh (24 h; 15 min after a 5xx)."""
    row = (
        Host.objects.filter(origin=origin, robots_fetched_at__isnull=False)
        .values_list("robots_status", "robots_body", "robots_fetched_at")
        .first()
    )
    if row is None:
        return None
    status, body, fetched_at = row
    rules = _rules(status, body.encode("utf-8"), now=fetched_at.timestamp())
    return rules if rules.expires_at > now else None


def save_robots(origin: str, *, status: int | None, body: bytes, fetched_at: float, delay: float):
    fields = {
        "robots_status": status,
        "robots_body": body.decode("utf-8", errors="replace").replace("\x00", ""),
        "robots_fetched_at": _dt(fetched_at),
        "robots_delay": delay,
    }
    Host.objects.bulk_create(
        [Host(origin=origin, **fields)],
        update_conflicts=True,
        unique_fields=["origin"],
        update_fields=list(fields),
    )


def release_thread_connections() -> None:
    """Call at the end of a worker thread: Django opens one connection per thread."""
    connections.close_all()
