"""URL safety: only http(s), and no private/loopback/link-local targets (SSRF) unless allowed.

Product and image URLs come from third-party data and our crawler runs next to our own
services, so a store (or a redirect) must not make us fetch http://127.0.0.1:8000/admin or a
cloud metadata address. `settings.MEEPO_ALLOW_PRIVATE_HOSTS` lifts the address check for tests
and the bundled demo shop, never the scheme check.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from pipeline.exceptions import FetchError


class UnsafeURL(FetchError):
    """A URL the crawler refuses to fetch (scheme, credentials, or a private address)."""


def check_url(url: str, *, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(
            f"refusing non-http(s) URL scheme {parts.scheme or '(none)'!r}: {url[:200]}"
        )
    if not parts.hostname:
        raise UnsafeURL(f"URL has no host: {url[:200]}")
    if parts.username or parts.password:
        raise UnsafeURL("refusing URL with credentials")
    if allow_private:
        return
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
        if not _is_public(address):
            raise UnsafeURL(
                f"refusing {parts.hostname}: it resolves to non-public address {address} "
                "(set MEEPO_ALLOW_PRIVATE_HOSTS only for tests and the demo shop)"
            )


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global and not address.is_multicast


def check_peer(sock: socket.socket, host: str) -> None:
    """Refuse a connection that reached a non-public address, whatever DNS said earlier."""
    address = ipaddress.ip_address(sock.getpeername()[0].split("%")[0])
    if not _is_public(address):
        sock.close()
        raise UnsafeURL(
            f"refusing {host}: the connection reached non-public address {address} "
            "(its DNS answer changed after the check: DNS rebinding?)"
        )
