"""An image host that answers 403 (or a 5xx robots.txt) stops only its own images.

Before, the first refused image stopped every remaining download of the store, on every run,
because the refused image was retried first next time. Now the other hosts' images (the
store's own, another store's) are all fetched, and the refused ones wait, pending, with the
reason.
"""

import pytest

from catalog.models import CrawlRun, ProductImage
from pipeline.scrape import add_store
from tests.hostile.store_pages import scrape_one, serve_product_page

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("block", ["403", "robots_503"])
def test_refusing_image_host_does_not_starve_the_rest(fast_crawl, make_shop, block):
    fast_crawl.MEEPO_MAX_RETRIES = 0
    shop = make_shop("schema_org", products=3)
    cdn = make_shop("shopify", products=1, seed=3)
    other = make_shop("woocommerce", products=2, seed=4)
    first = shop.products[0]
    cdn_image = cdn.image_url(cdn.products[0].id)
    serve_product_page(shop, first, image=[cdn_image])
    if block == "403":
        cdn.add_fault("/cdn/*", "status", status=403)
    else:
        cdn.set_robots("", status=503)
    add_store(other.base_url, crawl_delay=0.0, name="zz other")

    report, whole = scrape_one(shop, name="aa shop")

    assert report.status == CrawlRun.Status.SUCCEEDED  # a waiting picture is not a failure
    assert (report.images.skipped, report.images.failed) == (1, 0)
    waiting = ProductImage.objects.get(source_url=cdn_image)
    assert waiting.fetch_status == ProductImage.FetchStatus.PENDING
    assert "stopped us" in waiting.fetch_error
    others = ProductImage.objects.exclude(source_url=cdn_image)
    assert set(others.values_list("fetch_status", flat=True)) == {"ok"}
    assert {s.status for s in whole.stores} == {CrawlRun.Status.SUCCEEDED}
