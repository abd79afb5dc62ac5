"""The per-host gate across commands and processes, and the cap on what robots.txt may ask.

Gaps are measured on the wire by the fixture shop's own request log.
"""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from catalog.models import CrawlRun, Host, Product, Store
from pipeline.http import Fetcher
from pipeline.scrape import add_store, scrape_stores
from tests.gate_race import race_for_products_json

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def steady(fast_crawl):
    fast_crawl.MEEPO_CRAWL_JITTER = 0.0
    return fast_crawl


def _gaps(shop):
    times = sorted(r.time for r in shop.requests)
    return [b - a for a, b in itertools.pairwise(times)]


def test_add_store_then_scrape_keep_robots_crawl_delay_on_the_wire(steady, make_shop):
    """The reported case: `add_store URL` then `scrape` at once, robots.txt Crawl-delay 0.4."""
    shop = make_shop("shopify", products=2)
    shop.set_robots("User-agent: MeepoBot\nCrawl-delay: 0.4\n")
    call_command("add_store", shop.base_url, "--crawl-delay", "0")
    call_command("scrape")
    assert Product.objects.count() == 2
    gaps = _gaps(shop)
    assert len(gaps) >= 4
    assert min(gaps) >= 0.4
    assert [r.path for r in shop.requests].count("/robots.txt") == 1  # shared, not re-fetched
    host = Host.objects.get(origin=shop.base_url)
    assert host.robots_delay == 0.4
    assert "Crawl-delay: 0.4" in host.robots_body


def test_gate_holds_between_two_processes(steady, shopify_shop):
    race_for_products_json(
        shopify_shop.base_url, delay=0.3, env={"MEEPO_DATA_DIR": str(settings.MEEPO_DATA_DIR)}
    )
    paths = [r.path for r in shopify_shop.requests]
    assert paths.count("/products.json") == 6
    assert paths.count("/robots.txt") == 1
    assert min(_gaps(shopify_shop)) >= 0.3


@pytest.mark.parametrize(
    "asked", ["Crawl-delay: 1e308", "Crawl-delay: 86400", "Request-rate: 1/1000000s"]
)
def test_store_asking_for_a_huge_crawl_delay_is_skipped_with_the_reason(steady, make_shop, asked):
    greedy, fine = make_shop("shopify", products=2), make_shop("woocommerce", products=2)
    add_store(fine.base_url, crawl_delay=0.0, slug="fine")
    greedy_store = add_store(greedy.base_url, crawl_delay=0.0, slug="greedy", platform="shopify")
    greedy.set_robots(f"User-agent: *\n{asked}\n")
    greedy.clear_requests()

    report = scrape_stores(concurrency=1)

    by_slug = {s.store: s for s in report.stores}
    assert by_slug["greedy"].status == CrawlRun.Status.STOPPED
    assert "MEEPO_MAX_CRAWL_DELAY" in by_slug["greedy"].message
    assert by_slug["fine"].created == 2
    run = CrawlRun.objects.get(store=greedy_store)  # what the admin shows
    assert run.status == CrawlRun.Status.STOPPED
    assert "allow a long crawl delay" in run.errors[0]["reason"]
    assert [r.path for r in greedy.requests] == ["/robots.txt"]


def test_operator_may_allow_a_long_crawl_delay_then_the_cap_is_used(steady, make_shop):
    steady.MEEPO_MAX_CRAWL_DELAY = 0.3
    shop = make_shop("shopify", products=2)
    shop.set_robots("User-agent: MeepoBot\nCrawl-delay: 86400\n")
    store = add_store(shop.base_url, crawl_delay=0.0, platform="shopify")
    Store.objects.filter(pk=store.pk).update(allow_long_crawl_delay=True)

    report = scrape_stores()

    assert report.stores[0].status == CrawlRun.Status.SUCCEEDED
    assert report.created == 2
    gaps = _gaps(shop)
    assert len(gaps) >= 3
    assert min(gaps) >= 0.3
    assert max(gaps) < 5  # the cap, not a day


def test_crawl_status_prints_last_run_and_host_state(steady, make_shop, capsys):
    shop = make_shop("shopify", products=2)
    shop.set_robots("User-agent: *\nCrawl-delay: 120\n")
    add_store(shop.base_url, crawl_delay=0.0, slug="slowpoke", platform="shopify")
    scrape_stores()
    call_command("crawl_status", "--store", "slowpoke")
    out = capsys.readouterr().out
    assert "slowpoke: stopped at" in out
    assert "MEEPO_MAX_CRAWL_DELAY" in out
    assert f"host {shop.base_url}: " in out
    assert "robots.txt 200 at" in out
    assert "(asks 120s)" in out


SCRAPE_PROCESS = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "meepo.settings"
from django.conf import settings
settings.DATABASES["default"]["NAME"] = sys.argv[1]
import django
django.setup()
from django.core.management import call_command
call_command("scrape")
"""


@pytest.mark.parametrize("moment", ["listing", "images"])
def test_scrape_killed_mid_run_is_recovered_by_the_next_run(steady, make_shop, moment):
    import time

    from catalog.models import ProductImage

    def reached():
        paths = [r.path for r in shop.requests]
        if moment == "listing":
            return len(paths) >= 2
        return sum("/wp-content/" in p for p in paths) >= 2  # images half-way

    shop = make_shop("woocommerce", products=6)
    add_store(shop.base_url, crawl_delay=0.25)
    shop.clear_requests()
    env = {
        **os.environ,
        "MEEPO_DATA_DIR": str(settings.MEEPO_DATA_DIR),
        "MEEPO_ALLOWED_LOOPBACK": "127.0.0.1:*",
    }
    killed = subprocess.Popen(
        [sys.executable, "-c", SCRAPE_PROCESS, connection.settings_dict["NAME"]],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not reached() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert reached()
        killed.kill()  # SIGKILL: no cleanup of any kind
        killed.wait()
    finally:
        if killed.poll() is None:
            killed.kill()
    assert CrawlRun.objects.get().status == CrawlRun.Status.RUNNING  # what kill -9 leaves
    pending = ProductImage.objects.filter(fetch_status=ProductImage.FetchStatus.PENDING)
    assert moment == "listing" or pending.exists()  # killed with images still to fetch

    report = scrape_stores()

    assert CrawlRun.objects.order_by("started_at").first().status == CrawlRun.Status.INTERRUPTED
    assert report.stores[0].status == CrawlRun.Status.SUCCEEDED
    assert Product.objects.count() == 6  # nothing lost, nothing duplicated
    assert ProductImage.objects.exclude(fetch_status=ProductImage.FetchStatus.OK).count() == 0


def test_open_circuit_and_long_retry_after_hold_for_the_next_command(steady, shopify_shop):
    from pipeline.http import HostBlocked

    steady.MEEPO_CIRCUIT_BREAKER_FAILURES = 2
    steady.MEEPO_BACKOFF_BASE = 0.01
    steady.MEEPO_MAX_PARK_SECONDS = 10
    shopify_shop.add_fault("/products.json", "status", status=500)
    with Fetcher() as first, pytest.raises(HostBlocked, match="circuit open"):
        first.get(shopify_shop.base_url + "/products.json", kind="api")
    shopify_shop.clear_requests()
    with Fetcher() as second, pytest.raises(HostBlocked, match=r"left alone until .*circuit open"):
        second.get(shopify_shop.base_url + "/sitemap.xml", kind="api")
    assert shopify_shop.requests == []  # the next command did not ask at all
    host = Host.objects.get(origin=shopify_shop.base_url)
    assert host.consecutive_failures == 2
    assert host.parked_until is not None
