"""Per-host politeness state: minimum gap with additive jitter, AutoThrottle, parking, breaker.

One `HostState` per origin, loaded from and saved to `catalog.models.Host` by
`pipeline.http.gate`, which also makes sure only one request at a time goes to a host (across
threads and processes); this module decides how long to wait before the next one. Times are
wall-clock seconds (time.time()), because they are shared between processes.

Gap before a request = max(floor, throttle) x uniform(1, 1 + jitter), measured from the end of
the previous response, where floor = max(the kind's delay (store override or settings),
robots Crawl-delay, robots Request-rate seconds/requests, the back-off floor). Jitter therefore
only ever lengthens the gap (Scrapy's uniform(0.5, 1.5) can halve it; robots delays are floors).
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as clock_time


@dataclass
class HostState:
    host: str
    robots_delay: float = 0.0  # from Crawl-delay / Request-rate; only ever raises the floor
    throttle: float = 0.0  # AutoThrottle's current delay
    backoff_floor: float = 0.0  # doubled on 429/503 (AIMD), decays after successes
    last_done: float | None = None  # wall-clock end of the previous response
    parked_until: float = 0.0  # wall clock; Retry-After, back-off or an open circuit
    consecutive_failures: int = 0
    successes_since_backoff: int = 0
    reason: str = ""  # why the host is parked or slowed down (shown in the admin)
    current_delay: float = 0.0  # the gap chosen for the latest request
    requests: int = 0

    def floor(self, kind_delay: float, robots_cap: float = math.inf) -> float:
        return max(kind_delay, min(self.robots_delay, robots_cap), self.backoff_floor)

    def wait_seconds(
        self,
        kind_delay: float,
        jitter: float,
        rng: random.Random,
        now: float,
        robots_cap: float = math.inf,
    ) -> float:
        """Seconds to sleep before the next request may be sent (robots delays capped)."""
        gap = max(self.floor(kind_delay, robots_cap), self.throttle)
        if gap > 0 and jitter > 0:
            gap *= rng.uniform(1.0, 1.0 + jitter)
        self.current_delay = gap
        ready = self.parked_until
        if self.last_done is not None:
            ready = max(ready, self.last_done + gap)
        return max(0.0, ready - now)

    def observe_latency(
        self, latency: float, status: int, *, floor: float, target: float, max_delay: float
    ) -> None:
        """Scrapy's AutoThrottle: move towards latency/target, jump up at once, errors never speed up."""
        target_delay = latency / target
        new = max(target_delay, (self.throttle + target_delay) / 2)
        new = min(max(new, floor), max_delay)
        if status != 200 and new <= self.throttle:
            return
        self.throttle = new

    def record_success(self) -> None:
        self.consecutive_failures = 0
        if self.backoff_floor:
            self.successes_since_backoff += 1
            if self.successes_since_backoff >= 20:  # slow recovery after being told to slow down
                self.backoff_floor /= 2
                self.successes_since_backoff = 0
                if self.backoff_floor < 0.05:
                    self.backoff_floor = 0.0

    def record_failure(self) -> int:
        self.consecutive_failures += 1
        return self.consecutive_failures

    def slow_down(self, current_gap: float) -> None:
        """429/503: double the floor (multiplicative decrease of our request rate)."""
        self.backoff_floor = min(max(current_gap, 0.5) * 2, 600.0)
        self.successes_since_backoff = 0


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: integer or fractional seconds, or an HTTP date.

    Returns None for a missing or unusable value (negative, NaN, garbage); a date in the past
    means 0. Fractional values are accepted because real servers send them (Shopify: "2.0").
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(0.0, seconds)
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        return None
    return seconds


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential back-off base x 2^attempt, capped, with jitter that only adds (up to 50 %)."""
    delay = min(cap, base * (2**attempt))
    return delay * rng.uniform(1.0, 1.5)


def wall() -> float:
    return time.time()


def in_daily_window(now: clock_time, start: clock_time, end: clock_time) -> bool:
    """Whether `now` falls in [start, end) of a day; a window past midnight (22:00-06:00) wraps.

    The one spelling for robots.txt Visit-time and a store's off-peak hours."""
    return start <= now < end if start <= end else (now >= start or now < end)
