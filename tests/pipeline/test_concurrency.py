"""Many stores at once: overlap on the wire, one gate per host, grouping, failure isolation.

Concurrency is proven by the request logs of the fixture shops (timestamps taken when each
request line arrived), never by wall-clock speed.
"""

import itertools
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog import services
from catalog.models import CrawlRun, Host, Product, Store
from pipeline.crawl_pool import group_stores
from pipeline.http import Fetcher
from pipeline.scrape import add_store, scrape_stores

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def steady(fast_crawl):
    fast_crawl.MEEPO_CRAWL_JITTER = 0.0
    return fast_crawl


def _times(*shops):
    return sorted(r.time for shop in shops for r in shop.requests)


def _min_gap(times):
    return min(b - a for a, b in itertools.pairwise(times))


def test_two_stores_are_crawled_at_once_each_at_its_own_pace(steady, make_shop):
    a = make_shop("shopify", products=3, seed=1)
    b = make_shop("woocommerce", products=3, seed=2)
    add_store(a.base_url, crawl_delay=0.3, slug="a")
    add_store(b.base_url, crawl_delay=0.3, slug="b")
    a.clear_requests()
    b.clear_requests()

    report = scrape_stores(concurrency=2)

    assert [s.created for s in report.stores] == [3, 3]
    ta, tb = _times(a), _times(b)
    assert len(ta) >= 4
    assert len(tb) >= 4
    # The two crawls overlap on the wire: each shop was asked while the other was being crawled.
    assert tb[0] < ta[-1]
    assert ta[0] < tb[-1]
    assert _min_gap(ta) >= 0.3
    assert _min_gap(tb) >= 0.3


def test_concurrent_fetchers_share_one_gate_per_host(steady, shopify_shop):
    def fetch_three():
        try:
            with Fetcher(delay=0.25) as f:
                for _ in range(3):
                    f.get(shopify_shop.base_url + "/products.json", kind="api")
        finally:
            from django.db import connections

            connections.close_all()

    threads = [threading.Thread(target=fetch_three) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    paths = [r.path for r in shopify_shop.requests]
    assert paths.count("/products.json") == 9
    assert paths.count("/robots.txt") == 1  # fetched once, then shared
    assert _min_gap(_times(shopify_shop)) >= 0.25
    host = Host.objects.get(origin=shopify_shop.base_url)
    assert host.requests == 10
    assert host.last_request_at is not None


def test_stores_on_one_ip_and_port_form_one_group(settings):
    settings.MEEPO_CRAWL_GROUP_BY_IP = True
    same_a = Store(slug="a", base_url="http://127.0.0.1:8001")
    same_b = Store(slug="b", base_url="http://localhost:8001")
    other = Store(slug="c", base_url="http://127.0.0.1:8002")
    assert group_stores([same_a, other, same_b]) == [[same_a, same_b], [other]]
    settings.MEEPO_CRAWL_GROUP_BY_IP = False
    assert len(group_stores([same_a, other, same_b])) == 3


def test_a_store_raising_fails_only_its_own_run(steady, make_shop, monkeypatch):
    bad, good = make_shop("shopify", products=2), make_shop("woocommerce", products=2)
    add_store(bad.base_url, crawl_delay=0.0, slug="bad")
    add_store(good.base_url, crawl_delay=0.0, slug="good")
    real_upsert = services.upsert_products

    def upsert(*, store, **kwargs):
        if store.slug == "bad":
            raise RuntimeError("boom in a listing")
        return real_upsert(store=store, **kwargs)

    monkeypatch.setattr(services, "upsert_products", upsert)

    with pytest.raises(CommandError, match="at least one store failed"):
        call_command("scrape", "--concurrency", "2")

    bad_run = CrawlRun.objects.get(store__slug="bad")
    assert bad_run.status == CrawlRun.Status.FAILED
    assert bad_run.finished_at is not None
    assert "RuntimeError: boom in a listing" in bad_run.errors[0]["reason"]
    assert CrawlRun.objects.get(store__slug="good").status == CrawlRun.Status.SUCCEEDED
    assert Product.objects.filter(store__slug="good").count() == 2


def test_runs_left_running_by_a_killed_process_are_marked_interrupted(steady, shopify_shop):
    store = add_store(shopify_shop.base_url, crawl_delay=0.0)
    dead = services.start_crawl_run(store=store)  # as a kill -9 mid-scrape leaves it

    scrape_stores()

    dead.refresh_from_db()
    assert dead.status == CrawlRun.Status.INTERRUPTED
    assert CrawlRun.objects.exclude(pk=dead.pk).get().status == CrawlRun.Status.SUCCEEDED
    assert not CrawlRun.objects.filter(status=CrawlRun.Status.RUNNING).exists()


def test_without_a_terminal_each_store_gets_one_summary_log_line(steady, make_shop, caplog):
    shops = [make_shop("shopify", products=1, seed=i) for i in range(3)]
    for i, shop in enumerate(shops):
        add_store(shop.base_url, crawl_delay=0.0, slug=f"s{i}")
    with caplog.at_level("INFO", logger="pipeline.crawl_pool"):
        scrape_stores(concurrency=3)
    lines = [r.getMessage() for r in caplog.records if r.name == "pipeline.crawl_pool"]
    assert sorted(line.split(":")[0] for line in lines) == ["s0", "s1", "s2"]
    assert all("succeeded, 1 created" in line for line in lines)
