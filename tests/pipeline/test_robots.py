"""robots.txt rules per RFC 9309 and Retry-After parsing (pure functions)."""

from datetime import UTC, datetime

import pytest

from pipeline.http.hosts import HostState, parse_retry_after
from pipeline.http.robots import rules_from_response

ROBOTS = b"""User-agent: *
Disallow: /
Crawl-delay: 30

User-agent: MeepoBot
Allow: /
Disallow: /checkout
Crawl-delay: 2
Request-rate: 1/5s
Sitemap: https://s.example/sitemap.xml
"""


def test_group_for_our_token_wins_over_star():
    rules = rules_from_response(200, ROBOTS, now=0)
    assert rules.can_fetch("https://s.example/products/x", "MeepoBot")
    assert not rules.can_fetch("https://s.example/checkout/1", "MeepoBot")
    assert rules.min_gap("MeepoBot") == 5  # Request-rate 1/5s is stricter than Crawl-delay 2
    assert rules.sitemaps() == ["https://s.example/sitemap.xml"]


def test_other_bots_rules_do_not_apply():
    rules = rules_from_response(200, b"User-agent: BadBot\nDisallow: /\nCrawl-delay: 99\n", now=0)
    assert rules.can_fetch("https://s.example/", "MeepoBot")
    assert rules.min_gap("MeepoBot") == 0


@pytest.mark.parametrize(
    ("status", "allowed"),
    [(404, True), (403, True), (429, False), (500, False), (503, False), (None, False)],
)
def test_status_handling(status, allowed):
    rules = rules_from_response(status, b"User-agent: *\nDisallow: /\n", now=100)
    assert rules.can_fetch("https://s.example/a", "MeepoBot") is allowed
    assert rules.expires_at - 100 <= 24 * 3600


def test_html_soft_404_robots_means_no_rules_and_bom_is_ignored():
    assert rules_from_response(200, b"<html><body>Not found</body></html>", now=0).can_fetch(
        "https://s/a", "MeepoBot"
    )
    bom = "\ufeffUser-agent: MeepoBot\nDisallow: /x\n".encode()
    assert not rules_from_response(200, bom, now=0).can_fetch("https://s/x", "MeepoBot")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("2.0", 2.0),
        ("0.5", 0.5),
        ("-1", None),
        ("nan", None),
        ("soon", None),
        ("", None),
    ],
)
def test_parse_retry_after_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date():
    now = datetime(2026, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:30 GMT", now=now) == 30
    assert parse_retry_after("Wed, 21 Oct 2026 07:00:00 GMT", now=now) == 0


def test_host_gap_jitter_only_adds_and_autothrottle_jumps_up():
    import random

    host = HostState("h")
    host.last_done = 100.0
    rng = random.Random(1)
    waits = [host.wait_seconds(2.0, 0.5, rng, now=100.0) for _ in range(200)]
    assert min(waits) >= 2.0
    assert max(waits) <= 3.0
    host.observe_latency(3.0, 200, floor=0, target=0.5, max_delay=60)
    assert host.throttle == 6.0  # slow server: wait twice its latency at once
    host.observe_latency(0.1, 503, floor=0, target=0.5, max_delay=60)
    assert host.throttle == 6.0  # errors never speed us up
    host.observe_latency(0.1, 200, floor=0, target=0.5, max_delay=60)
    assert host.throttle == 3.1


@pytest.mark.parametrize(
    ("line", "gap"),
    [
        ("Crawl-delay: 1e308", 1e9),  # stored as "never"; time.sleep(1e308) overflows
        ("Crawl-delay: nan", 0.0),
        ("Crawl-delay: -3", 0.0),
        ("Request-rate: 1/1e400s", 0.0),
        ("Crawl-delay: 86400", 86400.0),
    ],
)
def test_min_gap_is_finite_whatever_robots_txt_says(line, gap):
    rules = rules_from_response(200, f"User-agent: *\n{line}\n".encode(), now=0)
    assert rules.min_gap("MeepoBot") == gap


def test_daily_window_wraps_past_midnight():
    from datetime import time

    from pipeline.http.hosts import in_daily_window

    assert in_daily_window(time(23, 0), time(22, 0), time(6, 0))
    assert in_daily_window(time(5, 59), time(22, 0), time(6, 0))
    assert not in_daily_window(time(6, 0), time(22, 0), time(6, 0))  # the end is excluded
    assert in_daily_window(time(9, 0), time(9, 0), time(17, 0))
    assert not in_daily_window(time(17, 0), time(9, 0), time(17, 0))
    assert not in_daily_window(time(21, 59), time(22, 0), time(6, 0))
