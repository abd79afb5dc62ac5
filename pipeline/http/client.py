"""The polite fetcher: every request Meepo sends to a store goes through `Fetcher.get`.

For each URL and each redirect hop it checks the scheme and address (SSRF), obeys robots.txt for
our bot token, waits its turn on the host (minimum gap + additive jitter + AutoThrottle +
Retry-After parking), sends a contact User-Agent and From header, asks for gzip/br only for
text, streams the body under a decoded-size cap and a total wall-clock deadline, and turns
429/503/5xx into back-off, 401/403 into a stop for the host, and repeated failures into an
open circuit. The wire exchange itself is pipeline.http.exchange. Each attempt happens inside
the host's gate (pipeline.http.gate): one request at a time per host across threads and
processes, with the host's state kept in catalog.models.Host.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings

from pipeline.exceptions import FetchError
from pipeline.http.connections import PolicedAdapter
from pipeline.http.exchange import Ask, send
from pipeline.http.gate import cached_robots, exclusive, host_turn, origin_of, save_robots
from pipeline.http.hosts import HostState, backoff_seconds, parse_retry_after
from pipeline.http.results import (
    CrawlDelayTooLong,
    DeadlineExceeded,
    FetchResult,
    FetchStats,
    HostBlocked,
    HttpError,
    TransportError,
    user_agent,
)
from pipeline.http.robots import (
    ROBOTS_MAX_BYTES,
    RobotsDisallowed,
    RobotsRules,
    RobotsUnavailable,
    rules_from_response,
)
from pipeline.http.safety import AddressPolicy, UnsafeURL, check_url

logger = logging.getLogger(__name__)

REDIRECT_STATUSES = {301, 302, 303, 307, 308}
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}


class Fetcher:
    """Polite HTTP GETs. `delay` overrides the settings' page/API delays (Store.crawl_delay)."""

    def __init__(
        self,
        *,
        delay: float | None = None,
        allowed_loopback: Iterable[str] | None = None,
        rng: random.Random | None = None,
        allow_long_delay: bool = False,
    ) -> None:
        self.delay = delay
        # Crawl at MEEPO_MAX_CRAWL_DELAY when robots.txt asks for more (Store.allow_long_crawl_delay)
        self.allow_long_delay = allow_long_delay
        # Public addresses only, plus the loopback host:port pairs tests and the demo shop need.
        self.policy = (
            AddressPolicy.from_settings()
            if allowed_loopback is None
            else AddressPolicy.from_entries(allowed_loopback)
        )
        self.rng = rng or random.Random()
        self.token = settings.MEEPO_BOT_NAME
        self.stats = FetchStats()
        self._robots: dict[str, RobotsRules] = {}  # this fetcher's copy of catalog.Host rows
        self._blocked: dict[str, str] = {}  # origins that answered 401/403 during this run
        self.session = requests.Session()
        self.session.trust_env = False  # no surprise proxies or .netrc credentials
        for scheme in ("http://", "https://"):
            self.session.mount(scheme, PolicedAdapter(policy=self.policy))
        self.session.headers.update({"User-Agent": user_agent(), "From": settings.MEEPO_BOT_EMAIL})

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- public -----------------------------------------------------------------------------
    def get(
        self,
        url: str,
        *,
        kind: str = "page",
        etag: str = "",
        last_modified: str = "",
        accept_types: Iterable[str] | None = None,
        max_bytes: int | None = None,
    ) -> FetchResult:
        """GET `url` politely, following at most MEEPO_MAX_REDIRECTS redirects hop by hop.

        Raises FetchError (or a subclass) with a human-readable reason for anything that is not
        a usable 2xx/304 answer.
        """
        conditional = {}
        if etag:
            conditional["If-None-Match"] = etag
        if last_modified:
            conditional["If-Modified-Since"] = last_modified
        seen: list[str] = []
        current = url
        for _hop in range(settings.MEEPO_MAX_REDIRECTS + 1):
            check_url(current, policy=self.policy)
            if current in seen:
                raise FetchError(f"redirect loop: {' -> '.join([*seen, current])[:400]}")
            seen.append(current)
            self._check_robots(current)
            ask = Ask(
                current,
                kind,
                conditional if len(seen) == 1 else {},
                tuple(accept_types) if accept_types is not None else None,
                max_bytes,
            )
            result = self._request(ask)
            if result.status in REDIRECT_STATUSES:
                location = result.headers.get("Location")
                if not location:
                    raise FetchError(f"redirect without Location from {current[:300]}")
                current = urljoin(current, location.strip())
                continue
            if result.status == 304:
                self.stats.not_modified += 1
            elif not 200 <= result.status < 300:
                raise HttpError(result.status, current)
            return result
        raise FetchError(f"more than {settings.MEEPO_MAX_REDIRECTS} redirects from {url[:300]}")

    def _check_robots(self, url: str) -> None:
        """Raise unless robots.txt lets our token fetch `url` now (Visit-time included)."""
        rules = self.robots_rules(url)
        if not rules.in_visit_time(self.token, datetime.now(UTC).time()):
            raise HostBlocked(f"robots.txt Visit-time for {self.token} excludes now (UTC)")
        if not rules.can_fetch(url, self.token):
            if rules.status == "disallow_all":
                raise RobotsUnavailable(f"{rules.reason} ({url[:200]})")
            raise RobotsDisallowed(f"robots.txt disallows {url[:300]}")

    def robots_rules(self, url: str) -> RobotsRules:
        """The origin's rules: stored ones while fresh (any command fetched them), else fetched."""
        origin = origin_of(url)
        rules = self._robots.get(origin)
        if rules is None or rules.expires_at <= time.time():
            rules = cached_robots(origin, now=time.time())
            if rules is None:
                with exclusive(origin, "#robots"):  # one refresh at a time, whoever asks
                    rules = cached_robots(origin, now=time.time()) or self._fetch_robots(origin)
            self._robots[origin] = rules
        asked, cap = rules.min_gap(self.token), settings.MEEPO_MAX_CRAWL_DELAY
        if asked > cap and not self.allow_long_delay:
            raise CrawlDelayTooLong(
                f"{origin}/robots.txt asks for {asked:g}s between requests, more than "
                f"MEEPO_MAX_CRAWL_DELAY ({cap:g}s): skipped; allow a long crawl delay on the "
                f"store to crawl it at {cap:g}s"
            )
        return rules

    # --- robots -----------------------------------------------------------------------------
    def _fetch_robots(self, origin: str) -> RobotsRules:
        status, body = self._download_robots(origin)
        now = time.time()
        rules = rules_from_response(status, body, now=now)
        gap = rules.min_gap(self.token)
        kept = body if status is not None and 200 <= status < 300 else b""
        save_robots(origin, status=status, body=kept, fetched_at=now, delay=gap)
        logger.info("robots %s: %s (min gap %.2fs)", origin, rules.reason, gap)
        return rules

    def _download_robots(self, origin: str) -> tuple[int | None, bytes]:
        """(status, body) of /robots.txt; status None when unreachable."""
        current = origin + "/robots.txt"
        try:
            for _hop in range(5):  # RFC 9309: follow at least five redirects
                check_url(current, policy=self.policy)
                ask = Ask(current, "robots", max_bytes=ROBOTS_MAX_BYTES, truncate=True)
                result = self._request(ask)
                if result.status in REDIRECT_STATUSES and result.headers.get("Location"):
                    current = urljoin(current, result.headers["Location"])
                    continue
                return result.status, result.body
        except (HostBlocked, UnsafeURL):
            raise  # a host we must not talk to is refused, not treated as "no robots.txt"
        except FetchError as exc:
            logger.warning("robots.txt for %s unavailable: %s", origin, exc)
            return None, b""
        return 300, b""

    # --- scheduling and retries (inside the host's gate, see pipeline.http.gate) -------------
    def _kind_delay(self, kind: str) -> float:
        if self.delay is not None:
            return self.delay
        return settings.MEEPO_CRAWL_DELAY if kind == "page" else settings.MEEPO_API_DELAY

    def _wait_turn(self, host: HostState, kind: str) -> None:
        now = time.time()
        if host.parked_until - now > settings.MEEPO_MAX_PARK_SECONDS:
            until = datetime.fromtimestamp(host.parked_until, UTC)
            raise HostBlocked(
                f"{host.host} is left alone until {until:%Y-%m-%d %H:%M} UTC: "
                f"{host.reason or 'it asked us to wait'}"
            )
        wait = host.wait_seconds(
            self._kind_delay(kind),
            settings.MEEPO_CRAWL_JITTER,
            self.rng,
            now,
            robots_cap=settings.MEEPO_MAX_CRAWL_DELAY,
        )
        if wait > 0:
            time.sleep(wait)
        host.requests += 1

    def _request(self, ask: Ask) -> FetchResult:
        origin = origin_of(ask.url)
        for attempt in range(settings.MEEPO_MAX_RETRIES + 1):
            if origin in self._blocked:
                raise HostBlocked(self._blocked[origin])
            # One attempt per turn: between attempts another thread or process may use the host.
            with host_turn(origin) as host:
                result = self._attempt(host, ask, attempt)
            if result is not None:
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, host: HostState, ask: Ask, attempt: int) -> FetchResult | None:
        """Wait the gap, send, judge the answer; None means "retry" (the host is parked)."""
        url, kind = ask.url, ask.kind
        last = attempt == settings.MEEPO_MAX_RETRIES
        self._wait_turn(host, kind)
        try:
            result = send(self.session, self.stats, ask)
        except (TransportError, DeadlineExceeded) as exc:
            host.last_done = time.time()
            self._count_failure(host, str(exc))
            if isinstance(exc, DeadlineExceeded):
                raise
            if last:
                raise FetchError(f"{exc} ({url[:300]})") from exc
            self._park(host, self._backoff(attempt), str(exc))
            return None
        host.last_done = time.time()
        return self._judge(host, url, kind, result, last=last, attempt=attempt)

    def _judge(
        self, host: HostState, url: str, kind: str, result: FetchResult, *, last: bool, attempt: int
    ) -> FetchResult | None:
        """The per-status policy for one answer: AutoThrottle learns its latency; 401/403 stops
        the host; 408/429/5xx count as failures, slow the host down and park it (None: retry,
        or the answer itself on the last attempt); anything else is a success."""
        if kind != "image":  # big downloads must not slow the HTML/API pace
            host.observe_latency(
                result.elapsed,
                result.status,
                floor=0.0,
                target=settings.MEEPO_AUTOTHROTTLE_TARGET,
                max_delay=settings.MEEPO_AUTOTHROTTLE_MAX_DELAY,
            )
        # RFC 9309: a 401/403 robots.txt means "no rules", so only real pages stop the host.
        if result.status in (401, 403) and kind != "robots":
            host.reason = self._blocked[host.host] = (
                f"{urlsplit(url).netloc} answered {result.status} to {url[:200]}: stopped "
                "crawling this host (we do not work around access controls)"
            )
            raise HostBlocked(host.reason)
        if result.status not in RETRY_STATUSES:
            host.record_success()
            if not host.backoff_floor:
                host.reason = ""
            return result
        self._count_failure(host, f"HTTP {result.status}")
        wait = parse_retry_after(result.headers.get("Retry-After"))
        if result.status in (429, 503):
            host.slow_down(host.floor(self._kind_delay(kind), settings.MEEPO_MAX_CRAWL_DELAY))
        self._park(host, self._backoff(attempt) if wait is None else wait, f"HTTP {result.status}")
        return result if last else None

    def _backoff(self, attempt: int) -> float:
        return backoff_seconds(
            attempt, settings.MEEPO_BACKOFF_BASE, settings.MEEPO_BACKOFF_MAX, self.rng
        )

    def _park(self, host: HostState, seconds: float, why: str) -> None:
        """Remember (in Host, for every command) that the host is not to be asked for a while."""
        host.parked_until = max(host.parked_until, time.time() + seconds)
        host.reason = f"asked to wait {seconds:.0f}s ({why})"
        if seconds > settings.MEEPO_MAX_PARK_SECONDS:
            raise HostBlocked(
                f"{urlsplit(host.host).netloc} asked us to wait {seconds:.0f}s ({why}), longer "
                "than MEEPO_MAX_PARK_SECONDS; resuming on the next run after that",
                retry_after=seconds,
            )
        logger.info("parking %s for %.2fs (%s)", host.host, seconds, why)

    def _count_failure(self, host: HostState, why: str) -> None:
        """Circuit breaker: after N failures in a row the host is left alone for a cool-down."""
        if host.record_failure() >= settings.MEEPO_CIRCUIT_BREAKER_FAILURES:
            cooldown = settings.MEEPO_CIRCUIT_COOLDOWN
            host.parked_until = max(host.parked_until, time.time() + cooldown)
            host.reason = (
                f"circuit open for {urlsplit(host.host).netloc} after "
                f"{host.consecutive_failures} consecutive failures (last: {why}); "
                f"left alone for {cooldown:.0f}s"
            )
            raise HostBlocked(host.reason)
