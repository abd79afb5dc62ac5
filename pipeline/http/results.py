"""What the fetcher returns (FetchResult, FetchStats) and the errors it raises."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from requests.structures import CaseInsensitiveDict

from pipeline.exceptions import FetchError

BOT_VERSION = "1.0"


class HttpError(FetchError):
    def __init__(self, status: int, url: str) -> None:
        super().__init__(f"HTTP {status} for {url[:300]}")
        self.status = status


class HostBlocked(FetchError):
    """The host told us to go away (401/403), asked for a long pause, or its circuit is open.

    `retry_after` (seconds) is set when the host said when to come back, so the next runs can
    leave it alone until then.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CrawlDelayTooLong(HostBlocked):
    """robots.txt asks for a longer gap than MEEPO_MAX_CRAWL_DELAY and the store may not take it."""


class ResponseTooLarge(FetchError):
    pass


class WrongContentType(FetchError):
    pass


class DeadlineExceeded(FetchError):
    pass


class TransportError(Exception):
    """Connection refused/reset or timeout: retryable."""


@dataclass
class FetchResult:
    url: str  # the final URL after redirects
    status: int  # 200-ish or 304
    headers: CaseInsensitiveDict
    body: bytes  # decoded (decompressed)
    elapsed: float  # seconds until the headers arrived
    wire_bytes: int

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    @property
    def etag(self) -> str:
        return self.headers.get("ETag", "")

    @property
    def last_modified(self) -> str:
        return self.headers.get("Last-Modified", "")

    def text(self) -> str:
        charset = "utf-8"
        for part in self.headers.get("Content-Type", "").split(";")[1:]:
            name, _, value = part.strip().partition("=")
            if name.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


@dataclass
class FetchStats:
    requests: int = 0
    not_modified: int = 0
    bytes_received: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def user_agent() -> str:
    return f"{settings.MEEPO_BOT_NAME}/{BOT_VERSION} (+{settings.MEEPO_BOT_URL}; {settings.MEEPO_BOT_EMAIL})"
