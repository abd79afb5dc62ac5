"""A store's products and pages must be on its own hosts; images and private addresses.

A product "url" of //evil.example/... (the "View at store" link) and sitemap entries on other
hosts are skipped with a reason; `Store.extra_hosts` lets an operator add a store's other
domains. Images may come from any public host, but with the test setting on
(MEEPO_ALLOWED_LOOPBACK=127.0.0.1:*) a page's image at 169.254.169.254 or 10.0.0.1 is still
refused, and so is a redirect there.
"""

import re

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Product, ProductImage, Store
from pipeline.http.safety import is_store_url, store_hosts
from pipeline.scrape import scrape_stores
from tests.hostile.store_pages import scrape_one, serve_product_page

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def crawl(fast_crawl):
    fast_crawl.MEEPO_MAX_RETRIES = 0
    return fast_crawl


def test_product_url_on_another_host_is_refused_with_a_reason(crawl, make_shop):
    shop = make_shop("schema_org", products=3)
    bad = shop.products[0]
    serve_product_page(shop, bad, url="//evil.example/p/phish")

    report, _ = scrape_one(shop)

    assert (report.created, report.failed) == (2, 1)
    reason = report.errors[0]["reason"]
    assert "evil.example is not one of the store's hosts" in reason
    assert not Product.objects.filter(url__contains="evil.example").exists()


def test_sitemap_entries_on_other_hosts_are_skipped_without_a_request(crawl, make_shop):
    shop = make_shop("schema_org", products=2)
    other = make_shop("schema_org", products=2, seed=9)  # another site's pages
    foreign = [other.product_url(p.id).replace("127.0.0.1", "localhost") for p in other.products]
    own = [shop.product_url(p.id) for p in shop.products]
    urls = "".join(f"<url><loc>{u}</loc></url>" for u in [*foreign, *own])
    shop.add_fault(
        "/sitemap.xml",
        "wrong_type",
        content_type="application/xml",
        body=f"<urlset>{urls}</urlset>".encode(),
    )

    report, _ = scrape_one(shop)

    assert report.created == 2
    assert other.requests == []
    assert any("2 URL(s) skipped: host localhost" in e["reason"] for e in report.errors)


def test_extra_hosts_admit_a_stores_other_domain(crawl, make_shop):
    crawl.MEEPO_ALLOWED_LOOPBACK = ["127.0.0.1:*", "[::1]:*"]  # localhost may answer as ::1
    shop = make_shop("schema_org", products=2)
    page = shop.product_url(shop.products[0].id).replace("127.0.0.1", "localhost")
    shop.add_fault(
        "/sitemap.xml",
        "wrong_type",
        content_type="application/xml",
        body=f"<urlset><url><loc>{page}</loc></url></urlset>".encode(),
    )

    call_command("add_store", shop.base_url, "--crawl-delay", "0", "--platform", "schema_org")
    assert scrape_stores().stores[0].created == 0  # localhost is not the store's host
    Store.objects.all().delete()
    call_command("add_store", shop.base_url, "--crawl-delay", "0", "--extra-hosts", "localhost")
    assert Store.objects.get().extra_hosts == "localhost"

    report = scrape_stores().stores[0]

    assert report.created == 1
    assert any(r.header("Host").startswith("localhost:") for r in shop.requests)


def test_page_redirecting_to_another_host_is_not_attributed_to_the_store(crawl, make_shop):
    crawl.MEEPO_ALLOWED_LOOPBACK = ["127.0.0.1:*", "[::1]:*"]  # localhost may answer as ::1
    shop = make_shop("schema_org", products=3)
    elsewhere = shop.product_url(shop.products[2].id).replace("127.0.0.1", "localhost")
    shop.add_fault(
        shop.product_url(shop.products[0].id)[len(shop.base_url) :], "redirect", location=elsewhere
    )

    report, _ = scrape_one(shop)

    assert (report.created, report.failed) == (2, 1)
    assert any(
        f"redirected to {elsewhere}" in e["reason"]
        and "not one of the store's hosts" in e["reason"]
        for e in report.errors
    )


@pytest.mark.parametrize(
    ("base", "extra", "url", "ok"),
    [
        ("https://shop.example", "", "https://shop.example:8443/p/1", True),
        ("https://shop.example", "", "https://www.shop.example/p/1", True),
        ("https://www.shop.example", "", "https://shop.example/p/1", True),
        ("https://shop.example", "", "https://shop.example.evil.example/p", False),
        ("https://shop.example", "", "https://evilshop.example/p", False),
        ("https://shop.example", "*.shop.example", "https://eu.shop.example/p", True),
        ("https://shop.example", "*.shop.example", "https://xshop.example/p", False),
        ("https://shop.example", "shop.example.co.uk, b.example", "http://b.example/", True),
        ("https://shop.example", "", "http://[::1", False),
    ],
)
def test_store_hosts(base, extra, url, ok):
    assert is_store_url(url, store_hosts(base, extra)) is ok


@pytest.mark.parametrize(
    "image", ["http://169.254.169.254/latest/meta-data/x.jpg", "http://10.0.0.1/x.jpg"]
)
def test_image_at_a_private_or_metadata_address_is_refused_in_test_mode(crawl, make_shop, image):
    assert crawl.MEEPO_ALLOWED_LOOPBACK == ["127.0.0.1:*"]
    shop = make_shop("schema_org", products=2)
    bad = shop.products[0]
    serve_product_page(shop, bad, image=[image])

    report, _ = scrape_one(shop)

    refused = ProductImage.objects.get(source_url=image)
    assert refused.fetch_status == ProductImage.FetchStatus.FAILED
    assert "non-public address" in refused.fetch_error
    assert report.images.failed == 1
    assert report.created == 2


def test_image_redirecting_to_the_metadata_address_is_refused(crawl, make_shop):
    shop = make_shop("shopify", products=2)
    path = shop.image_path(shop.products[0].id)
    shop.add_fault(path, "redirect", location="http://169.254.169.254/latest/meta-data/")

    report, _ = scrape_one(shop)

    bad = ProductImage.objects.get(fetch_status=ProductImage.FetchStatus.FAILED)
    assert "169.254.169.254" in bad.fetch_error
    assert report.images.failed == 1


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/", "http://169.254.169.254/", "http://[::1]:8000/", "ftp://shop/"]
)
def test_add_store_of_a_private_address_is_a_clear_command_error(crawl, url):
    with pytest.raises(CommandError, match=re.escape(f"cannot add {url}: refusing")) as raised:
        call_command("add_store", url, "--platform", "shopify")
    assert raised.value.returncode == 2
    assert not Store.objects.exists()
