"""robots.txt rules per RFC 9309, parsed with Protego and matched on our bot token only.

Status handling (RFC 9309 §2.3.1): 2xx is parsed; 4xx (no robots.txt) allows everything; 5xx,
timeouts and unreachable hosts disallow everything until a retry, because a broken server is
no invitation. Rules are cached for at most 24 hours (in catalog.models.Host, shared by
every command). Crawl-delay and Request-rate for our
token become a minimum gap between requests (the fetcher only ever lets them slow it down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import time

from protego import Protego

from pipeline.exceptions import FetchError
from pipeline.http.hosts import in_daily_window

ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309 asks crawlers to parse at least 500 KiB
ROBOTS_CACHE_SECONDS = 24 * 3600
ROBOTS_RETRY_SECONDS = 15 * 60  # a 5xx/unreachable robots.txt is asked for again after this
MAX_GAP = 1e9  # seconds; anything longer is "never" and is stored as this


class RobotsDisallowed(FetchError):
    """robots.txt does not allow our bot to fetch this URL."""


class RobotsUnavailable(FetchError):
    """robots.txt answered 5xx or could not be fetched: RFC 9309 says treat the site as closed."""


@dataclass
class RobotsRules:
    status: str  # "parsed" | "allow_all" | "disallow_all"
    reason: str
    expires_at: float  # wall clock (time.time())
    parser: Protego | None = None

    def can_fetch(self, url: str, token: str) -> bool:
        if self.status == "allow_all":
            return True
        if self.status == "disallow_all" or self.parser is None:
            return False
        return self.parser.can_fetch(url, token)

    def min_gap(self, token: str) -> float:
        """Seconds between requests that Crawl-delay / Request-rate ask of our token (0 if none)."""
        if self.parser is None:
            return 0.0
        gap = 0.0
        delay = self.parser.crawl_delay(token)
        if delay:
            gap = max(gap, float(delay))
        rate = self.parser.request_rate(token)
        if rate and rate.requests:
            gap = max(gap, rate.seconds / rate.requests)
        # `Crawl-delay: 1e308` or `inf` must not reach time.sleep (OverflowError): the fetcher
        # compares this with MEEPO_MAX_CRAWL_DELAY; NaN is no rule at all.
        return 0.0 if math.isnan(gap) else min(gap, MAX_GAP)

    def in_visit_time(self, token: str, now: time) -> bool:
        """False outside a `Visit-time: HHMM-HHMM` (UTC) window the site gave our token."""
        window = self.parser.visit_time(token) if self.parser is not None else None
        if window is None:
            return True
        return in_daily_window(now, window.start_time, window.end_time)

    def sitemaps(self) -> list[str]:
        return list(self.parser.sitemaps) if self.parser is not None else []


def rules_from_response(status: int | None, body: bytes, *, now: float) -> RobotsRules:
    """Turn a robots.txt fetch outcome into rules. `status` None means unreachable."""
    # 429 is "slow down", not "no robots.txt": treat it like a server error, as Google does.
    if status is None or status >= 500 or status == 429:
        what = "unreachable" if status is None else f"answered {status}"
        return RobotsRules(
            "disallow_all",
            f"robots.txt {what}: site treated as closed, retry later",
            now + ROBOTS_RETRY_SECONDS,
        )
    if 400 <= status < 500:
        return RobotsRules(
            "allow_all", f"robots.txt answered {status}: no rules", now + ROBOTS_CACHE_SECONDS
        )
    if not 200 <= status < 300:
        # A 3xx still here means the redirect chain was too long; RFC 9309 says treat as 4xx.
        return RobotsRules("allow_all", f"robots.txt answered {status}", now + ROBOTS_CACHE_SECONDS)
    text = body[:ROBOTS_MAX_BYTES].decode("utf-8-sig", errors="ignore")
    return RobotsRules(
        "parsed", "robots.txt parsed", now + ROBOTS_CACHE_SECONDS, Protego.parse(text)
    )
