"""End to end: add_store + scrape against demo shops on 127.0.0.1."""

import itertools
import logging
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from catalog.models import CrawlRun, FetchState, Host, ImageAsset, Product, ProductImage, Store
from pipeline.exceptions import ScrapeFailed
from pipeline.scrape import add_store, scrape_stores

pytestmark = pytest.mark.django_db(transaction=True)

# What each platform can tell us about availability: Shopify only says "available".
EXPECTED_AVAILABILITY = {
    "shopify": {"in_stock": "in_stock", "out_of_stock": "out_of_stock", "preorder": "out_of_stock"},
    "woocommerce": {"in_stock": "in_stock", "out_of_stock": "out_of_stock", "preorder": "preorder"},
    "schema_org": {"in_stock": "in_stock", "out_of_stock": "out_of_stock", "preorder": "preorder"},
}


def _db_product(shop, product):
    store = Store.objects.get(base_url=shop.base_url)
    if shop.flavour == "schema_org":
        return Product.objects.get(store=store, external_id=shop.product_url(product.id))
    return Product.objects.get(store=store, external_id=str(product.id))


@pytest.mark.parametrize("flavour", ["shopify", "woocommerce", "schema_org"])
def test_add_store_detects_the_platform(fast_crawl, make_shop, flavour):
    shop = make_shop(flavour, products=2)
    store = add_store(shop.base_url + "/some/page", crawl_delay=0.0)
    assert store.platform == flavour
    assert store.base_url == shop.base_url
    assert shop.requests[0].path == "/robots.txt"


def test_add_store_refuses_duplicates_and_non_http(fast_crawl, shopify_shop):
    add_store(shopify_shop.base_url, crawl_delay=0.0)
    with pytest.raises(ScrapeFailed, match="already exists"):
        add_store(shopify_shop.base_url + "/")
    with pytest.raises(ScrapeFailed, match="http"):
        add_store("ftp://example.com/")


@pytest.mark.parametrize("flavour", ["shopify", "woocommerce", "schema_org"])
def test_scrape_fills_the_catalogue_with_correct_fields(fast_crawl, make_shop, flavour):
    shop = make_shop(flavour, products=10)
    add_store(shop.base_url, crawl_delay=0.0)

    report = scrape_stores()

    assert (report.created, report.failed) == (10, 0)
    for demo in shop.products:
        p = _db_product(shop, demo)
        assert p.title == demo.title
        assert p.price == demo.price
        assert p.currency == demo.currency
        assert p.availability == EXPECTED_AVAILABILITY[flavour][demo.availability]
        assert p.brand == demo.brand
        assert p.is_active
        images = list(p.images.all())
        assert images
        assert all(i.fetch_status == ProductImage.FetchStatus.OK for i in images)
        asset = images[0].asset
        assert asset.thumbnail.storage.exists(asset.thumbnail.name)
        assert asset.placeholder.startswith("data:image/")
        assert len(asset.placeholder) <= 500
    run = CrawlRun.objects.get()
    assert (run.status, run.created) == (CrawlRun.Status.SUCCEEDED, 10)


def test_images_are_asked_at_clip_size_where_the_platform_allows(fast_crawl, make_shop):
    shop = make_shop("shopify", products=2)
    add_store(shop.base_url, crawl_delay=0.0)
    scrape_stores()
    image_requests = [r for r in shop.requests if "/cdn/shop/" in r.path]
    assert image_requests
    assert all("width=640" in r.path for r in image_requests)
    assert all(r.header("Accept-Encoding") == "identity" for r in image_requests)
    assert ImageAsset.objects.filter(width=640).exists()


@pytest.mark.parametrize("flavour", ["shopify", "woocommerce", "schema_org"])
def test_second_scrape_sends_conditional_requests_and_changes_nothing(
    fast_crawl, make_shop, flavour
):
    shop = make_shop(flavour, products=6)
    add_store(shop.base_url, crawl_delay=0.0)
    scrape_stores()
    before = list(Product.objects.values_list("id", "updated_at", "content_hash").order_by("id"))
    images_before = list(ProductImage.objects.values_list("id", "asset_id").order_by("id"))
    shop.clear_requests()

    report = scrape_stores()

    assert (report.created, report.updated, report.unchanged, report.failed) == (0, 0, 6, 0)
    assert (
        list(Product.objects.values_list("id", "updated_at", "content_hash").order_by("id"))
        == before
    )
    assert list(ProductImage.objects.values_list("id", "asset_id").order_by("id")) == images_before
    listing = [r for r in shop.requests if r.path != "/robots.txt"]
    assert listing, "the listing is still checked"
    assert all(r.header("If-None-Match") for r in listing)
    assert all(r.status == 304 for r in listing)
    assert sum(r.bytes_sent for r in shop.requests) < 1000
    assert len(shop.requests) <= 4


def test_changed_product_is_updated_and_removed_one_deactivated(fast_crawl, make_shop):
    shop = make_shop("woocommerce", products=5)
    add_store(shop.base_url, crawl_delay=0.0)
    scrape_stores()
    changed, gone = shop.products[0], shop.products[1]
    shop.update_product(changed.id, title="Fluffy striped salmon pillow XL")
    shop.remove_product(gone.id)
    shop.add_products(1)

    report = scrape_stores()

    assert (report.created, report.updated, report.unchanged) == (1, 1, 3)
    assert report.stores[0].deactivated == 1
    assert _db_product(shop, changed).title == "Fluffy striped salmon pillow XL"
    gone_row = Product.objects.get(external_id=str(gone.id))
    assert not gone_row.is_active  # kept, never deleted
    assert Product.objects.count() == 6


def test_dry_run_writes_nothing(fast_crawl, shopify_shop):
    add_store(shopify_shop.base_url, crawl_delay=0.0)
    report = scrape_stores(dry_run=True)
    assert report.created == 8
    assert Product.objects.count() == 0
    assert FetchState.objects.count() == 0
    assert CrawlRun.objects.count() == 0
    assert not any("/cdn/" in r.path for r in shopify_shop.requests)


def test_limit_caps_products_and_skips_deactivation(fast_crawl, make_shop):
    shop = make_shop("schema_org", products=6)
    add_store(shop.base_url, crawl_delay=0.0)
    report = scrape_stores(limit=2)
    assert report.created == 2
    assert report.stores[0].deactivated == 0
    assert Product.objects.count() == 2
    assert scrape_stores().created == 4  # the capped run left no "unchanged" marks behind


@pytest.mark.slow
def test_size_chart_shared_by_many_products_is_flagged(fast_crawl, make_shop):
    shop = make_shop("shopify", products=20)
    with_chart = [p for p in shop.products if any(i.kind == "size_chart" for i in p.images)]
    assert len(with_chart) >= 3
    add_store(shop.base_url, crawl_delay=0.0)
    scrape_stores()
    shared = ProductImage.objects.filter(is_shared=True)
    assert shared.count() == len(with_chart)
    assert shared.values("asset").distinct().count() == 1
    assert not ProductImage.objects.filter(is_shared=True, position=0).exists()


def test_whole_scrape_keeps_the_store_delay_between_requests_on_the_wire(fast_crawl, make_shop):
    fast_crawl.MEEPO_CRAWL_JITTER = 0.5
    shop = make_shop("woocommerce", products=3)
    add_store(shop.base_url, crawl_delay=0.2)
    shop.clear_requests()
    scrape_stores()
    times = [r.time for r in shop.requests]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) >= 5
    assert min(gaps) >= 0.2


def test_store_that_answers_403_is_stopped_and_others_still_crawled(fast_crawl, make_shop):
    bad, good = make_shop("shopify", products=2), make_shop("woocommerce", products=2)
    add_store(bad.base_url, crawl_delay=0.0, slug="bad")
    add_store(good.base_url, crawl_delay=0.0, slug="good")
    bad.add_fault("/products.json*", "status", status=403)

    report = scrape_stores()

    by_slug = {s.store: s for s in report.stores}
    assert by_slug["bad"].status == CrawlRun.Status.STOPPED
    assert "403" in by_slug["bad"].message
    assert by_slug["good"].created == 2
    assert CrawlRun.objects.get(store__slug="bad").errors[0]["reason"].startswith("127.0.0.1")


def _robots_txt_a_day_old():
    """RFC 9309 lets a crawler keep robots.txt for 24 hours: make the stored copy that old."""
    Host.objects.update(robots_fetched_at=timezone.now() - timedelta(hours=24, seconds=1))


def test_robots_5xx_stops_the_store_without_touching_the_catalogue(fast_crawl, shopify_shop):
    add_store(shopify_shop.base_url, crawl_delay=0.0)
    scrape_stores()
    shopify_shop.set_robots("", status=503)
    fast_crawl.MEEPO_MAX_RETRIES = 0
    _robots_txt_a_day_old()
    report = scrape_stores()
    assert report.stores[0].status == CrawlRun.Status.STOPPED
    assert Product.objects.filter(is_active=True).count() == 8


def test_robots_disallow_for_the_bot_keeps_it_out(fast_crawl, shopify_shop):
    add_store(shopify_shop.base_url, crawl_delay=0.0)
    shopify_shop.set_robots("User-agent: MeepoBot\nDisallow: /\n")
    _robots_txt_a_day_old()
    shopify_shop.clear_requests()
    report = scrape_stores()
    assert report.created == 0
    assert [r.path for r in shopify_shop.requests] == ["/robots.txt"]


def test_off_peak_window_stop_mode(fast_crawl, shopify_shop):
    import datetime as dt

    from django.utils import timezone

    store = add_store(shopify_shop.base_url, crawl_delay=0.0)
    now = timezone.now()
    store.offpeak_start = (now + dt.timedelta(hours=2)).time()
    store.offpeak_end = (now + dt.timedelta(hours=3)).time()
    store.offpeak_mode = Store.OffPeakMode.STOP
    store.save()
    shopify_shop.clear_requests()
    report = scrape_stores()
    assert report.stores[0].status == CrawlRun.Status.STOPPED
    assert "off-peak" in report.stores[0].message
    assert shopify_shop.requests == []


def test_scrape_command_prints_summary_and_second_run_is_unchanged(fast_crawl, woo_shop, capsys):
    call_command("add_store", woo_shop.base_url, "--crawl-delay", "0")
    call_command("scrape")
    call_command("scrape", "--store", Store.objects.get().slug)
    out = capsys.readouterr().out
    assert "8 created, 0 updated, 0 unchanged, 0 failed" in out
    assert "0 created, 0 updated, 8 unchanged, 0 failed" in out


def test_scrape_command_errors(fast_crawl, shopify_shop):
    with pytest.raises(CommandError) as unknown:
        call_command("scrape", "--store", "nope")
    assert unknown.value.returncode == 2
    with pytest.raises(CommandError):
        call_command("scrape", "--limit", "0")
    call_command("add_store", shopify_shop.base_url)
    with pytest.raises(CommandError, match="already exists"):
        call_command("add_store", shopify_shop.base_url)
    with pytest.raises(CommandError) as bad_delay:
        call_command("add_store", "http://127.0.0.1:9/", "--crawl-delay", "-1")
    assert bad_delay.value.returncode == 2


def test_scrape_command_max_failures(fast_crawl, schema_shop, caplog):
    call_command("add_store", schema_shop.base_url, "--crawl-delay", "0")
    schema_shop.break_product(schema_shop.products[0].id, "soft404")
    with caplog.at_level(logging.WARNING), pytest.raises(CommandError, match="max-failures"):
        call_command("scrape", "--max-failures", "0")
    assert Product.objects.count() == 7


def test_off_peak_window_wait_mode_waits_for_the_window(fast_crawl, shopify_shop):
    import datetime as dt
    import time

    from django.utils import timezone

    store = add_store(shopify_shop.base_url, crawl_delay=0.0)
    now = timezone.now()
    store.offpeak_start = (now + dt.timedelta(seconds=2.5)).time()
    store.offpeak_end = (now + dt.timedelta(hours=1)).time()
    store.save()
    start = time.monotonic()
    report = scrape_stores()
    assert time.monotonic() - start >= 1.0
    assert report.created == 8


def test_store_max_products_caps_the_crawl(fast_crawl, make_shop):
    shop = make_shop("woocommerce", products=4)
    store = add_store(shop.base_url, crawl_delay=0.0)
    store.max_products = 3
    store.save()
    report = scrape_stores()
    assert report.created == 3
    assert report.stores[0].deactivated == 0


def test_woocommerce_on_plain_permalinks_uses_rest_route(fast_crawl, make_shop):
    shop = make_shop("woocommerce", products=3, plain_permalinks=True)
    store = add_store(shop.base_url, crawl_delay=0.0)
    assert store.platform == "woocommerce"
    assert scrape_stores().created == 3
    shop.clear_requests()
    assert scrape_stores().unchanged == 3
    # robots.txt is still fresh from the first run (kept 24 h, shared by every run and command)
    assert [r.path.split("&")[0] for r in shop.requests] == ["/?rest_route=/wc/store/v1/products"]


def test_long_retry_after_pauses_the_store_for_later_runs(fast_crawl, shopify_shop):
    store = add_store(shopify_shop.base_url, crawl_delay=0.0)
    shopify_shop.add_fault("/products.json*", "retry_after", value="7200")
    first = scrape_stores().stores[0]
    assert first.status == CrawlRun.Status.STOPPED
    store.refresh_from_db()
    assert store.paused_until is not None
    shopify_shop.clear_requests()
    second = scrape_stores().stores[0]
    assert "asked us to wait until" in second.message
    assert shopify_shop.requests == []
