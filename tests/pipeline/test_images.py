"""pipeline.images.download_images: content-addressed assets, reuse, dry run, re-runs."""

from pathlib import Path

import pytest

from catalog.models import ImageAsset, ProductImage
from pipeline.images import download_images, thumbnail_name
from pipeline.scrape import add_store, scrape_stores

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def scraped(fast_crawl, make_shop, settings):
    shop = make_shop("woocommerce", products=4)
    add_store(shop.base_url, crawl_delay=0.0)
    scrape_stores(dry_run=False)
    return shop


def test_thumbnails_are_content_addressed_jpegs_under_media_root(scraped, settings):
    for asset in ImageAsset.objects.all():
        assert asset.thumbnail.name == thumbnail_name(asset.sha256)
        path = Path(settings.MEDIA_ROOT) / asset.thumbnail.name
        assert path.read_bytes()[:3] == b"\xff\xd8\xff"
        assert max(asset.width, asset.height) <= 1024


def test_second_download_run_fetches_nothing(scraped):
    scraped.clear_requests()
    report = download_images()
    assert (report.downloaded, report.failed) == (0, 0)
    assert scraped.requests == []


def test_same_url_on_another_product_is_reused_without_a_request(scraped):
    done = ProductImage.objects.filter(fetch_status="ok").first()
    twin = ProductImage.objects.create(
        product=ProductImage.objects.exclude(product=done.product).first().product,
        source_url=done.source_url,
        position=9,
    )
    scraped.clear_requests()
    report = download_images()
    twin.refresh_from_db()
    assert report.reused == 1
    assert twin.asset_id == done.asset_id
    assert scraped.requests == []


def test_dry_run_counts_and_writes_nothing(fast_crawl, make_shop):
    shop = make_shop("shopify", products=2)
    add_store(shop.base_url, crawl_delay=0.0)
    scrape_stores(dry_run=False)
    ProductImage.objects.update(fetch_status="pending", asset=None)
    shop.clear_requests()
    report = download_images(dry_run=True)
    assert report.skipped == ProductImage.objects.count()
    assert shop.requests == []
    assert not ProductImage.objects.filter(fetch_status="ok").exists()
