"""Redis locks of distributed mode: one holder per name across every machine.

A lock is a Redis key `meepo:lock:<name>` holding the holder's token (`host:pid:label:random`),
set with NX and an expiry (redis-py's `Lock`, which checks the token before it extends or
deletes, so a holder never frees a lock that expired and went to someone else). While the body
runs, one renewer thread per process extends every held lock at a third of its expiry; a worker
killed with -9 stops renewing and its locks lapse after `ttl` seconds, so nothing stays locked
for ever and nothing needs a cleanup job.

Used for: the per-host politeness gate (pipeline.http.gate, blocking), one crawl per host
(pipeline.distributed.tasks, non-blocking) and one index builder (non-blocking).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from pipeline.exceptions import PipelineLocked

logger = logging.getLogger(__name__)

KEY_PREFIX = "meepo:lock:"


class LockHeld(PipelineLocked):
    """Another worker holds the lock; `holder` is its token (host:pid:label:random)."""

    def __init__(self, name: str, holder: str = "") -> None:
        super().__init__(name, holder)  # args rebuild it when Celery stores it as a retry reason
        self.name = name
        self.holder = holder

    def __str__(self) -> str:
        return f"lock {self.name!r} is held by {self.holder or 'someone whose lock just lapsed'}"


@functools.cache
def _client(url: str, pid: int):
    import redis

    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)


def redis_client():
    """This process's client for MEEPO_BROKER_URL (a new one after a fork)."""
    if not settings.MEEPO_BROKER_URL:
        raise PipelineLocked("distributed mode is off (MEEPO_BROKER_URL is empty)")
    return _client(settings.MEEPO_BROKER_URL, os.getpid())


def holder_token(label: str = "") -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{label}:{uuid.uuid4().hex[:8]}"


def token_label(token: str) -> str:
    """The label part of a holder token ('' for a token of another shape)."""
    parts = token.split(":")
    return ":".join(parts[2:-1]) if len(parts) >= 4 else ""


class _Renewer:
    """One daemon thread per process that extends the expiry of every lock held in it."""

    def __init__(self) -> None:
        self.held: dict[int, tuple[object, float]] = {}
        self.guard = threading.Lock()
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name="redis-lock-renewer", daemon=True)
        self.thread.start()

    def add(self, lock, ttl: float) -> None:
        with self.guard:
            self.held[id(lock)] = (lock, ttl)
        self.wake.set()

    def remove(self, lock) -> None:
        with self.guard:
            self.held.pop(id(lock), None)

    def _run(self) -> None:
        from redis.exceptions import LockError, RedisError

        due: dict[int, float] = {}
        while True:
            with self.guard:
                held = dict(self.held)
            now = time.monotonic()
            for key, (lock, ttl) in held.items():
                if due.setdefault(key, now + ttl / 3) > now:
                    continue
                try:
                    lock.reacquire()  # back to the full ttl, only if the token is still ours
                except (LockError, RedisError) as exc:
                    logger.error("lock %s could not be renewed: %s", lock.name, exc)
                due[key] = now + ttl / 3
            for key in set(due) - set(held):
                del due[key]
            shortest = min((ttl for _, ttl in held.values()), default=3.0)
            self.wake.wait(max(0.05, shortest / 6))
            self.wake.clear()


_renewers: dict[int, _Renewer] = {}
_renewers_guard = threading.Lock()


def _renewer() -> _Renewer:
    with _renewers_guard:
        pid = os.getpid()  # a forked child has no thread: it starts its own
        if pid not in _renewers:
            _renewers[pid] = _Renewer()
        return _renewers[pid]


@contextmanager
def redis_lock(
    name: str,
    *,
    ttl: float = 60.0,
    blocking: bool = True,
    wait: float | None = None,
    label: str = "",
) -> Iterator[str]:
    """Hold `meepo:lock:<name>` for the body; yield the token.

    Non-blocking (or blocking with `wait` seconds at most): raise LockHeld with the holder's
    token when someone else has it. The lock is renewed while the body runs and released after.
    """
    from redis.exceptions import LockError

    client = redis_client()
    lock = client.lock(KEY_PREFIX + name, timeout=ttl, sleep=0.05, thread_local=False)
    token = holder_token(label)
    if not lock.acquire(blocking=blocking, blocking_timeout=wait, token=token):
        raise LockHeld(name, client.get(KEY_PREFIX + name) or "")
    renewer = _renewer()
    renewer.add(lock, ttl)
    try:
        yield token
    finally:
        renewer.remove(lock)
        try:
            lock.release()
        except LockError:  # it lapsed (a stalled process); whoever holds it now keeps it
            logger.warning("lock %s had lapsed before its release", name)


def held_locks() -> list[dict]:
    """Every lock held now: name, holder token and seconds left, sorted by name."""
    client = redis_client()
    rows = []
    for key in sorted(client.scan_iter(match=KEY_PREFIX + "*", count=500)):
        holder, ttl = client.get(key), client.pttl(key)
        if holder is not None:
            rows.append(
                {"name": key[len(KEY_PREFIX) :], "holder": holder, "expires_in": ttl / 1000}
            )
    return rows
