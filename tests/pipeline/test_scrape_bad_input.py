"""Bad input never crashes a run or corrupts the catalogue: each case is skipped with a logged
reason and a counted failure, and the rest of the store is scraped as usual."""

import logging

import pytest

from catalog.models import CrawlRun, Product, ProductImage
from pipeline.scrape import add_store, scrape_stores

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def crawl(fast_crawl):
    fast_crawl.MEEPO_MAX_RETRIES = 0
    # Generous: on a busy machine (make test runs two suites at once) decompressing a bomb up to
    # its cap may take more than a second, and must still fail for the cap, not the deadline.
    # The drip cases, which are about the deadline, set their own (drip_deadline).
    fast_crawl.MEEPO_REQUEST_TIMEOUT = 10.0
    fast_crawl.MEEPO_MAX_RESPONSE_BYTES = 500_000
    fast_crawl.MEEPO_MAX_IMAGE_BYTES = 2_000_000
    return fast_crawl


def drip_deadline(crawl, kind):
    if kind == "drip":
        crawl.MEEPO_REQUEST_TIMEOUT = 1.0


def _scrape(shop):
    add_store(shop.base_url, crawl_delay=0.0)
    return scrape_stores().stores[0]


def _page_path(shop, product):
    return shop.product_url(product.id)[len(shop.base_url) :]


def test_malformed_json_ld_next_to_a_good_block_loses_nothing(crawl, make_shop):
    shop = make_shop("schema_org", products=4)
    demo = shop.break_product(shop.products[0].id, "malformed_jsonld")
    report = _scrape(shop)
    assert (report.created, report.failed) == (4, 0)
    assert Product.objects.get(title=demo.title).price == demo.price


@pytest.mark.parametrize(
    ("quirk", "reason"),
    [("only_malformed_jsonld", "no product data"), ("soft404", "soft 404")],
)
def test_page_without_usable_product_data_is_skipped_and_counted(
    crawl, make_shop, caplog, quirk, reason
):
    shop = make_shop("schema_org", products=4)
    bad = shop.break_product(shop.products[0].id, quirk)
    with caplog.at_level(logging.WARNING, logger="pipeline.scrape"):
        report = _scrape(shop)
    assert (report.created, report.failed) == (3, 1)
    assert report.status == CrawlRun.Status.PARTIAL
    assert any(reason in r.getMessage() and bad.handle in r.getMessage() for r in caplog.records)
    run = CrawlRun.objects.get()
    assert reason in run.errors[0]["reason"]
    assert not Product.objects.filter(title=bad.title).exists()


def test_missing_price_keeps_the_product_without_a_price(crawl, make_shop):
    shop = make_shop("woocommerce", products=3)
    demo = shop.break_product(shop.products[0].id, "no_price")
    report = _scrape(shop)
    assert report.failed == 0
    assert Product.objects.get(title=demo.title).price is None


def test_comma_decimal_price_and_currency_symbol_are_understood(crawl, make_shop):
    shop = make_shop("schema_org", products=3)
    comma = shop.break_product(shop.products[0].id, "comma_price")
    symbol = shop.break_product(shop.products[1].id, "symbol_currency")
    _scrape(shop)
    assert Product.objects.get(title=comma.title).price == comma.price
    assert Product.objects.get(title=symbol.title).currency == "EUR"


@pytest.mark.parametrize(
    ("kind", "params", "reason"),
    [
        ("status", {"status": 500}, "HTTP 500"),
        ("redirect", {"location": "{page}"}, "redirect loop"),
        ("redirect", {"location": "gopher://127.0.0.1/x"}, "scheme"),
        ("wrong_type", {"content_type": "application/pdf", "body": b"%PDF"}, "content type"),
        ("huge", {"size": 5_000_000, "content_type": "text/html", "length": False}, "cap"),
        ("gzip_bomb", {"size": 100 * 2**20}, "cap"),
        ("drip", {"chunk": 50, "interval": 0.1}, "within"),
        ("close", {}, "connection"),
    ],
)
def test_broken_product_page_is_skipped_and_the_rest_scraped(
    crawl, make_shop, caplog, kind, params, reason
):
    drip_deadline(crawl, kind)
    shop = make_shop("schema_org", products=3)
    bad = shop.products[1]
    path = _page_path(shop, bad)
    if params.get("location") == "{page}":
        params = {"location": path}
    shop.add_fault(path, kind, **params)
    with caplog.at_level(logging.WARNING):
        report = _scrape(shop)
    assert (report.created, report.failed) == (2, 1)
    assert reason in report.errors[0]["reason"]
    assert any(reason in r.getMessage() for r in caplog.records)


def test_temporarily_failing_page_keeps_its_product_and_a_gone_one_is_deactivated(crawl, make_shop):
    shop = make_shop("schema_org", products=3)
    _scrape(shop)
    flaky, gone = shop.products[0], shop.products[1]
    shop.update_product(flaky.id)  # newer lastmod: it will be fetched again
    shop.update_product(gone.id)
    shop.add_fault(_page_path(shop, flaky), "status", status=503)
    shop.add_fault(_page_path(shop, gone), "status", status=404)
    report = scrape_stores().stores[0]
    assert report.failed == 2
    assert Product.objects.get(title=flaky.title).is_active
    assert not Product.objects.get(title=gone.title).is_active


@pytest.mark.parametrize(
    ("kind", "params", "reason"),
    [
        ("bomb", {}, "decompression bomb"),
        ("truncate", {"fraction": 0.5}, "truncated"),
        ("wrong_type", {}, "content type"),
        (
            "wrong_type",
            {"content_type": "image/jpeg", "body": b"<html>hi</html>"},
            "not a supported image",
        ),
        ("huge", {"size": 10_000_000, "content_type": "image/jpeg"}, "cap"),
        ("drip", {"chunk": 2000, "interval": 0.1}, "within"),
        ("redirect", {"location": "{self}"}, "redirect loop"),
        ("redirect", {"location": "ftp://127.0.0.1/x.jpg"}, "scheme"),
    ],
)
def test_bad_image_fails_alone(crawl, make_shop, kind, params, reason):
    drip_deadline(crawl, kind)
    shop = make_shop("shopify", products=3)
    path = shop.image_path(shop.products[0].id)
    if params.get("location") == "{self}":
        params = {"location": path + "?v=1767600000&width=640"}
    shop.add_fault(path, kind, **params)

    report = _scrape(shop)

    assert report.created == 3
    assert report.images.failed == 1
    bad = ProductImage.objects.get(fetch_status=ProductImage.FetchStatus.FAILED)
    assert bad.product.external_id == str(shop.products[0].id)
    assert reason in bad.fetch_error
    assert bad.asset is None
    ok = ProductImage.objects.filter(fetch_status=ProductImage.FetchStatus.OK)
    assert ok.count() == ProductImage.objects.count() - 1
    assert report.status == CrawlRun.Status.PARTIAL


def test_failed_image_is_retried_later_with_back_off(crawl, make_shop):
    shop = make_shop("shopify", products=1)
    shop.add_fault(shop.image_path(shop.products[0].id), "status", status=500, times=1)
    _scrape(shop)
    failed = ProductImage.objects.get(fetch_status=ProductImage.FetchStatus.FAILED)
    assert failed.fetch_attempts == 1
    scrape_stores()  # too early: the 1 h back-off has not passed
    failed.refresh_from_db()
    assert failed.fetch_status == ProductImage.FetchStatus.FAILED
    ProductImage.objects.filter(pk=failed.pk).update(
        last_fetched_at=failed.last_fetched_at.replace(year=2020)
    )
    scrape_stores()
    failed.refresh_from_db()
    assert failed.fetch_status == ProductImage.FetchStatus.OK


def test_api_answering_a_login_page_is_a_counted_failure_without_deactivation(crawl, make_shop):
    shop = make_shop("woocommerce", products=3)
    _scrape(shop)
    shop.add_fault("/wp-json/wc/store/v1/products*", "wrong_type")
    report = scrape_stores().stores[0]
    assert report.failed == 1
    assert "content type" in report.errors[0]["reason"]
    assert Product.objects.filter(is_active=True).count() == 3


def test_truncated_api_json_is_a_counted_failure(crawl, make_shop):
    shop = make_shop("shopify", products=3)
    add_store(shop.base_url, crawl_delay=0.0)
    shop.add_fault("/products.json*", "truncate", fraction=0.5)
    report = scrape_stores().stores[0]
    assert report.failed == 1
    assert "unreadable" in report.errors[0]["reason"]
    assert Product.objects.count() == 0


@pytest.mark.parametrize(
    ("flavour", "api"),
    [("shopify", "/products.json*"), ("woocommerce", "/wp-json/wc/store/v1/products*")],
)
def test_api_page_unreadable_twice_deactivates_nothing_and_is_read_again(
    crawl, make_shop, flavour, api
):
    # The same broken bytes twice are not "unchanged": that would list no ids and deactivate all.
    shop = make_shop(flavour, products=3)
    assert _scrape(shop).created == 3
    shop.add_fault(api, "truncate", fraction=0.5)
    for _ in range(2):
        report = scrape_stores().stores[0]
        assert report.failed == 1
        assert "unreadable" in report.errors[0]["reason"]
        assert report.deactivated == 0
        assert Product.objects.filter(is_active=True).count() == 3
    shop.faults.clear()
    assert scrape_stores().stores[0].unchanged == 3


def test_api_429_with_retry_after_is_waited_out(fast_crawl, make_shop):
    shop = make_shop("shopify", products=1)
    add_store(shop.base_url, crawl_delay=0.0)
    shop.add_fault("/products.json*", "retry_after", value="0.4", times=1)
    report = scrape_stores().stores[0]
    assert report.created == 1
    api = [r for r in shop.requests if r.path.startswith("/products.json?limit=250")]
    assert [r.status for r in api] == [429, 200]
    assert api[1].time - api[0].time >= 0.4
