"""HTTP connections the fetcher can police: they check whom they reached and say which socket
serves the current request.

Why: `check_url` resolves a host, then urllib3 resolves it again to connect; a hostile DNS
server can answer a public address to the first and 127.0.0.1 or 169.254.169.254 to the second
(DNS rebinding), so each socket's actual peer is checked as well. And requests' timeouts are per
socket operation: a server that trickles its headers a line at a time never trips them, so the
fetcher's watchdog needs the socket before any response exists (`socket_slot`).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from pipeline.http.safety import AddressPolicy, check_peer

_current = threading.local()


class SocketSlot:
    """Holds the socket serving one request; read by a timer thread, written by the requester."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None


@contextmanager
def socket_slot() -> Iterator[SocketSlot]:
    """While open, connections used by this thread put their socket in the slot."""
    slot = SocketSlot()
    _current.slot = slot
    try:
        yield slot
    finally:
        _current.slot = None


def _record(sock: socket.socket | None) -> None:
    slot = getattr(_current, "slot", None)
    if slot is not None and sock is not None:
        slot.sock = sock


class _Policed:
    """Mixin for urllib3 connections: peer check against the pool's policy, socket reporting."""

    policy: AddressPolicy = AddressPolicy()
    host: str
    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        _record(sock)  # from here on, a TLS handshake or header trickle can be cut short
        check_peer(sock, self.host, self.policy)
        return sock

    def request(self, *args, **kwargs):
        _record(self.sock)  # a kept-alive connection serving one more request
        return super().request(*args, **kwargs)  # type: ignore[misc]


def _pools(policy: AddressPolicy) -> dict[str, type]:
    """Pool classes whose connections check their peer against `policy`."""
    pools = {}
    for scheme, pool, conn in (
        ("http", HTTPConnectionPool, HTTPConnection),
        ("https", HTTPSConnectionPool, HTTPSConnection),
    ):
        connection = type(f"Policed{conn.__name__}", (_Policed, conn), {"policy": policy})
        pools[scheme] = type(f"Policed{pool.__name__}", (pool,), {"ConnectionCls": connection})
    return pools


class PolicedAdapter(HTTPAdapter):
    """A requests adapter over policed connections: peers must be public or allowed by `policy`."""

    def __init__(self, *, policy: AddressPolicy, **kwargs) -> None:
        self.policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        # An instance attribute: the module-level default mapping is shared by every PoolManager.
        self.poolmanager.pool_classes_by_scheme = _pools(self.policy)


class Watchdog:
    """Enforces a total deadline: shuts the request's socket down when time is up.

    requests' timeouts are per socket operation, so a server trickling a header line or a body
    byte every few seconds would never trip them; closing the socket from a timer thread is what
    makes the deadline total.
    """

    def __init__(self, slot: SocketSlot, seconds: float) -> None:
        self.slot, self.seconds, self.fired = slot, max(0.0, seconds), False
        self.disarmed = False
        self._lock = threading.Lock()
        self.timer = threading.Timer(self.seconds, self._fire)
        self.timer.daemon = True

    def _fire(self) -> None:
        with self._lock:
            if self.disarmed:
                return
            self.fired = True
        sock = self.slot.sock
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def disarm(self) -> bool:
        """Stop the watchdog; True if it had already fired."""
        with self._lock:
            self.disarmed = True
            return self.fired

    def __enter__(self) -> Watchdog:
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()
