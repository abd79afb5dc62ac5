"""URL safety: only http(s), only public addresses (SSRF), and the store's own hosts for pages.

Product and image URLs come from third-party data and our crawler runs next to our own
services, so a store (or a redirect) must not make us fetch http://127.0.0.1:8000/admin or a
cloud metadata address. Every address a URL resolves to, and every socket's actual peer, must
be public. The one exception is `settings.MEEPO_ALLOWED_LOOPBACK`: loopback `host:port` pairs
(`127.0.0.1:8765`, `[::1]:*`, `localhost:*`) for tests and the bundled demo shop. Private,
link-local (169.254.169.254, the cloud metadata address), multicast and reserved addresses are
refused in every mode; nothing but a loopback address can be allowed.

`is_store_url` is the other guard: product and page URLs must be on the store's registered
hosts (its base URL's host, the www./bare twin, and `Store.extra_hosts`), so a store cannot
attribute another site's pages to itself or point "View at store" elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from pipeline.exceptions import FetchError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_LOCALHOST = ("127.0.0.1", "::1")


class UnsafeURL(FetchError):
    """A URL the crawler refuses to fetch (scheme, credentials, or a private address)."""


@dataclass(frozen=True)
class AddressPolicy:
    """Which non-public peers may be reached: loopback (address, port) pairs; port None = any."""

    loopback: frozenset[tuple[Address, int | None]] = frozenset()

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> AddressPolicy:
        return cls(frozenset(pair for entry in entries for pair in _parse_entry(entry)))

    @classmethod
    def from_settings(cls) -> AddressPolicy:
        return cls.from_entries(settings.MEEPO_ALLOWED_LOOPBACK)

    def allows(self, address: Address, port: int) -> bool:
        if _is_public(address):
            return True
        if not address.is_loopback:
            return False  # private, link-local, metadata, reserved: never, whatever the settings
        return (address, port) in self.loopback or (address, None) in self.loopback


def _parse_entry(entry: str) -> list[tuple[Address, int | None]]:
    """'127.0.0.1:8765' | '127.0.0.1:*' | '[::1]:*' | 'localhost:*' -> (address, port) pairs."""
    text = entry.strip()
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]").lower()
    if not sep or not host:
        raise ImproperlyConfigured(
            f"MEEPO_ALLOWED_LOOPBACK entry {entry!r} is not host:port (e.g. 127.0.0.1:8765 or "
            "127.0.0.1:*)"
        )
    if port_text == "*":
        port = None
    elif port_text.isdigit() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        raise ImproperlyConfigured(f"MEEPO_ALLOWED_LOOPBACK entry {entry!r}: bad port")
    names = _LOCALHOST if host == "localhost" else (host,)
    pairs = []
    for name in names:
        try:
            address = ipaddress.ip_address(name)
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"MEEPO_ALLOWED_LOOPBACK entry {entry!r}: the host must be a loopback address "
                "or localhost"
            ) from exc
        if not address.is_loopback:
            raise ImproperlyConfigured(
                f"MEEPO_ALLOWED_LOOPBACK entry {entry!r}: only loopback addresses can be allowed "
                "(private, link-local and metadata addresses are refused in every mode)"
            )
        pairs.append((address, port))
    return pairs


def check_url(url: str, *, policy: AddressPolicy) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(
            f"refusing non-http(s) URL scheme {parts.scheme or '(none)'!r}: {url[:200]}"
        )
    if not parts.hostname:
        raise UnsafeURL(f"URL has no host: {url[:200]}")
    if parts.username or parts.password:
        raise UnsafeURL("refusing URL with credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeURL(f"bad port in URL: {url[:200]}") from exc
    try:
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve {parts.hostname}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not policy.allows(address, port):
            raise UnsafeURL(
                f"refusing {parts.hostname}: it resolves to non-public address {address} port "
                f"{port} (only loopback host:port pairs listed in MEEPO_ALLOWED_LOOPBACK, for "
                "tests and the demo shop, are ever allowed)"
            )


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address (mapped, 6to4, Teredo, NAT64) are as public
        # as the address they carry: 64:ff9b::a9fe:a9fe reaches 169.254.169.254 via NAT64.
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not _is_public(embedded):
            return False
    return address.is_global and not address.is_multicast


def check_peer(sock: socket.socket, host: str, policy: AddressPolicy) -> None:
    """Refuse a connection that reached a non-public address, whatever DNS said earlier."""
    peer = sock.getpeername()
    address = ipaddress.ip_address(peer[0].split("%")[0])
    if not policy.allows(address, peer[1]):
        sock.close()
        raise UnsafeURL(
            f"refusing {host}: the connection reached non-public address {address} "
            "(its DNS answer changed after the check: DNS rebinding?)"
        )


# --- the store's own hosts ---------------------------------------------------------------------


def store_hosts(base_url: str, extra_hosts: str = "") -> frozenset[str]:
    """Host names whose pages belong to a store: its base URL's host, the www./bare twin, and
    the operator's extra hosts (comma/space separated; `*.example.com` covers subdomains)."""
    host = (urlsplit(base_url).hostname or "").rstrip(".")
    twin = host.removeprefix("www.") if host.startswith("www.") else f"www.{host}"
    extra = {h.strip().lower().rstrip(".") for h in extra_hosts.replace(",", " ").split()}
    return frozenset({host, twin, *extra} - {"", "www."})


def is_store_url(url: str, hosts: frozenset[str]) -> bool:
    """True when `url` is on one of `hosts` (matched by name, any port; see store_hosts)."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return False
    if not host:
        return False
    if host in hosts:
        return True
    return any(h.startswith("*.") and host.endswith(h[1:]) for h in hosts)


def off_store_reason(url: str, hosts: frozenset[str]) -> str:
    try:
        host = urlsplit(url).hostname or "(none)"
    except ValueError:
        host = "(unparseable)"
    return (
        f"host {host} is not one of the store's hosts ({', '.join(sorted(hosts))}); "
        "an operator can add it to the store's extra hosts"
    )
