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
