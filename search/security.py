"""Who is asking, and how many photo searches one worker runs at once.

- `client_address(request)`: the client's address. nginx (deploy/nginx/meepo.conf) reaches
  gunicorn over a unix socket (REMOTE_ADDR "") or loopback and appends the address it saw as the
  *last* X-Forwarded-For entry, which a client cannot forge (it can only add entries before it).
  A request that reached Django from anywhere else comes from the client itself, and its
  X-Forwarded-For is ignored, unless it came from MEEPO_TRUSTED_PROXIES: the load balancer in
  front of several web nodes (deploy/nginx/meepo-cluster.conf), which reaches gunicorn over the
  private network. django-axes counts failed admin logins per this address.
- `is_local(request)`: the client is this machine (monitors, an operator's curl).
- `upload_slot()`: at most MEEPO_UPLOAD_CONCURRENCY photo searches decode and encode at once in
  this process; others wait up to MEEPO_UPLOAD_WAIT_SECONDS, then `UploadsBusy` (a 429). With
  the per-IP nginx zone this bounds a worker's memory and CPU whatever its thread count.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import threading
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest

from catalog.exceptions import MeepoError


class UploadsBusy(MeepoError):
    """Every photo-search slot of this worker stayed busy for MEEPO_UPLOAD_WAIT_SECONDS."""


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def client_address(request: HttpRequest) -> str:
    """The address of whoever sent `request` (see the module docstring), "" when unknown."""
    peer = request.META.get("REMOTE_ADDR", "") or ""
    if peer and not _is_loopback(peer) and not _is_trusted_proxy(peer):
        return peer
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded:
        return forwarded.rsplit(",", 1)[-1].strip()
    return peer or "127.0.0.1"  # a unix-socket peer with no proxy header: a local process


def _is_trusted_proxy(address: str) -> bool:
    if not settings.MEEPO_TRUSTED_PROXIES:
        return False
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net) for net in settings.MEEPO_TRUSTED_PROXIES)


def is_local(request: HttpRequest) -> bool:
    return _is_loopback(client_address(request))


def has_operator_token(request: HttpRequest) -> bool:
    """The request carries `Authorization: Bearer <MEEPO_HEALTH_TOKEN>` (never true if unset)."""
    token = settings.MEEPO_HEALTH_TOKEN
    sent = request.headers.get("Authorization", "")
    if not token or not sent.startswith("Bearer "):
        return False
    return hmac.compare_digest(sent.removeprefix("Bearer ").strip().encode(), token.encode())


_slots: dict[int, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def _semaphore() -> threading.BoundedSemaphore:
    size = max(1, settings.MEEPO_UPLOAD_CONCURRENCY)
    with _slots_lock:
        return _slots.setdefault(size, threading.BoundedSemaphore(size))


@contextlib.contextmanager
def upload_slot() -> Iterator[None]:
    """Hold one of this process's photo-search slots, or raise UploadsBusy."""
    semaphore = _semaphore()
    if not semaphore.acquire(timeout=settings.MEEPO_UPLOAD_WAIT_SECONDS):
        raise UploadsBusy("too many photo searches at once; try again in a few seconds")
    try:
        yield
    finally:
        semaphore.release()
