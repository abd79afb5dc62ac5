"""One HTTP exchange of the polite fetcher: headers out, a capped body back, within one deadline.

`send` is the wire half of `Fetcher`'s attempt (pipeline.http.client decides when, how often and
whether the answer is usable): it asks for gzip/br only for text, streams the body under a
decoded-size cap (a gzip bomb hits it like a huge body), refuses unexpected content types, and
holds the whole exchange, headers included, to MEEPO_REQUEST_TIMEOUT with a watchdog on the
socket (pipeline.http.connections.Watchdog).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import requests
from django.conf import settings

from pipeline.exceptions import FetchError
from pipeline.http.connections import Watchdog, socket_slot
from pipeline.http.results import (
    DeadlineExceeded,
    FetchResult,
    FetchStats,
    ResponseTooLarge,
    TransportError,
    WrongContentType,
)

TEXT_KINDS = {"page", "api", "sitemap", "robots"}
ACCEPT = {
    "page": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5",
    "api": "application/json",
    "sitemap": "application/xml,text/xml;q=0.9,*/*;q=0.5",
    "robots": "text/plain,*/*;q=0.5",
    "image": "image/jpeg,image/png,image/webp,image/gif;q=0.9",
}


@dataclass(frozen=True)
class Ask:
    """One GET as the fetcher means it: the same for every attempt and every retry."""

    url: str
    kind: str = "page"  # page | api | sitemap | robots | image: Accept, caps, pacing
    conditional: Mapping[str, str] = field(default_factory=dict)  # If-None-Match, ...
    accept_types: tuple[str, ...] | None = None  # content types the caller can use
    max_bytes: int | None = None  # None: MEEPO_MAX_IMAGE_BYTES or MEEPO_MAX_RESPONSE_BYTES
    truncate: bool = False  # over the cap: keep the first max_bytes instead of failing

    @property
    def limit(self) -> int:
        if self.max_bytes:
            return self.max_bytes
        if self.kind == "image":
            return settings.MEEPO_MAX_IMAGE_BYTES
        return settings.MEEPO_MAX_RESPONSE_BYTES


def request_headers(kind: str, conditional: Mapping[str, str]) -> dict[str, str]:
    return {
        "Accept": ACCEPT.get(kind, "*/*"),
        # Images are already compressed; asking for gzip only burns the shop's CPU.
        "Accept-Encoding": "gzip, br" if kind in TEXT_KINDS else "identity",
        **conditional,
    }


def send(session: requests.Session, stats: FetchStats, ask: Ask) -> FetchResult:
    """One GET without redirects; raises TransportError (retryable), DeadlineExceeded, or a
    FetchError for an answer that can never be used."""
    url, kind = ask.url, ask.kind
    deadline = settings.MEEPO_REQUEST_TIMEOUT
    # One deadline for the whole exchange, headers included: the watchdog holds the socket
    # from the moment it connects (or is reused), before any response exists.
    late = DeadlineExceeded(
        f"no complete answer within {deadline:.1f}s (slow server?): {url[:200]}"
    )
    with socket_slot() as slot, Watchdog(slot, deadline) as dog:
        resp = _open(session, url, request_headers(kind, ask.conditional), deadline, dog, late)
        stats.requests += 1
        stats.by_kind[kind] = stats.by_kind.get(kind, 0) + 1
        with resp:
            try:
                body = read_body(resp, url, ask.limit, ask.accept_types, ask.truncate)
            except (requests.RequestException, OSError) as exc:
                if dog.fired:
                    raise late from exc
                raise TransportError(f"broken response: {exc.__class__.__name__}") from exc
            # Disarmed before the connection goes back to the pool: a late shot would kill
            # a socket the next request is about to use.
            if dog.disarm():
                raise late
            wire = resp.raw.tell() if hasattr(resp.raw, "tell") else len(body)
    stats.bytes_received += wire
    return FetchResult(
        url, resp.status_code, resp.headers, body, resp.elapsed.total_seconds(), wire
    )


def _open(
    session: requests.Session,
    url: str,
    headers: dict[str, str],
    deadline: float,
    dog: Watchdog,
    late: DeadlineExceeded,
) -> requests.Response:
    """The response with its headers read (body still streaming), errors mapped to ours."""
    try:
        return session.get(
            url,
            headers=headers,
            stream=True,
            allow_redirects=False,
            timeout=(min(6.05, deadline), min(20.0, deadline)),
        )
    except requests.RequestException as exc:
        if dog.fired:
            raise late from exc
        if isinstance(exc, requests.Timeout):
            raise TransportError(f"timed out: {exc.__class__.__name__}") from exc
        if isinstance(exc, requests.ConnectionError):
            raise TransportError(f"connection failed: {exc.__class__.__name__}") from exc
        raise FetchError(f"bad request to {url[:200]}: {exc}") from exc


def read_body(
    resp: requests.Response,
    url: str,
    limit: int,
    accept_types: Iterable[str] | None,
    truncate: bool,
) -> bytes:
    if resp.status_code != 200:
        # Error pages, redirects and 304s: their body is not worth our or their bandwidth.
        return resp.raw.read(64 * 1024, decode_content=False) if resp.status_code >= 400 else b""
    ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if accept_types and not any(ctype.startswith(t) for t in accept_types):
        raise WrongContentType(f"unexpected content type {ctype or '(none)'!r} for {url[:200]}")
    length = resp.headers.get("Content-Length")
    encoded = resp.headers.get("Content-Encoding", "identity").lower() != "identity"
    if not truncate and length and length.isdigit() and not encoded and int(length) > limit:
        raise ResponseTooLarge(
            f"response of {int(length)} bytes is over the {limit} byte cap: {url[:200]}"
        )
    chunks, size = [], 0
    # iter_content yields *decoded* bytes, so a gzip bomb hits the cap like a huge body.
    for chunk in resp.iter_content(chunk_size=16384):
        size += len(chunk)
        if size > limit:
            if truncate:
                chunks.append(chunk[: limit - (size - len(chunk))])
                break
            raise ResponseTooLarge(f"response over the {limit} byte cap (decoded): {url[:200]}")
        chunks.append(chunk)
    return b"".join(chunks)
