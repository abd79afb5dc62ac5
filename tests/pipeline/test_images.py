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


def _images_on(cdn, products):
    """Point the first pictures of `products` at the CDN shop's own image URLs, pending."""
    moved = []
    for n, product in enumerate(products):
        image = ProductImage.objects.filter(product=product).order_by("position").first()
        image.source_url = cdn.image_url(cdn.products[n].id)
        image.fetch_status, image.asset = "pending", None
        image.save()
        moved.append(image)
    return moved


@pytest.mark.parametrize("block", ["403", "robots_503"])
def test_a_blocked_image_host_stops_only_its_own_images(fast_crawl, make_shop, block):
    from catalog.models import Product

    fast_crawl.MEEPO_MAX_RETRIES = 0
    shop = make_shop("shopify", products=4)
    cdn = make_shop("shopify", products=2, seed=7)
    add_store(shop.base_url, crawl_delay=0.0)
    scrape_stores()
    products = list(Product.objects.order_by("pk"))
    blocked = _images_on(cdn, products[:2])  # the first images in download order
    ProductImage.objects.filter(product__in=products[2:]).update(fetch_status="pending", asset=None)
    if block == "403":
        cdn.add_fault("/cdn/*", "status", status=403)
    else:
        cdn.set_robots("", status=503)
    shop.clear_requests()

    report = download_images()

    others = ProductImage.objects.filter(product__in=products[2:])
    assert (report.downloaded + report.reused, report.skipped) == (others.count(), 2)
    assert set(others.values_list("fetch_status", flat=True)) == {"ok"}
    for image in blocked:
        image.refresh_from_db()
        assert image.fetch_status == "pending"  # not a failure of the picture: tried again later
        assert f"image host 127.0.0.1:{cdn.port} stopped us" in image.fetch_error
        assert image.last_fetched_at is not None
    cdn_paths = [r.path for r in cdn.requests if r.path != "/robots.txt"]
    assert len(cdn_paths) <= 1  # one refusal per host, not one per image


def test_images_never_tried_go_before_images_whose_host_stopped_us(fast_crawl, make_shop):
    from catalog.models import Host, Product

    fast_crawl.MEEPO_MAX_RETRIES = 0
    shop = make_shop("shopify", products=3)
    cdn = make_shop("shopify", products=1, seed=7)
    add_store(shop.base_url, crawl_delay=0.0)
    scrape_stores()
    products = list(Product.objects.order_by("pk"))
    _images_on(cdn, products[:1])
    cdn.set_robots("", status=503)
    download_images()  # the CDN image is deferred
    ProductImage.objects.filter(product__in=products[1:]).update(fetch_status="pending", asset=None)
    cdn.set_robots("User-agent: *\nAllow: /\n")  # the CDN is back, and we forget it was not
    Host.objects.all().delete()
    shop.clear_requests()
    cdn.clear_requests()

    download_images()

    shop_times = [r.time for r in shop.requests if r.path.startswith("/cdn/")]
    assert len(shop_times) >= 2
    cdn_times = [r.time for r in cdn.requests if r.path.startswith("/cdn/")]
    assert len(cdn_times) == 1
    assert max(shop_times) < cdn_times[0]


def test_same_bytes_at_another_url_count_as_reused_with_one_asset(tmp_path):
    """Content addressing: the second URL serving the same picture adds no asset and counts as
    reused; a new picture counts as downloaded."""
    import io
    from types import SimpleNamespace

    from PIL import Image

    from pipeline.images import _download_one
    from tests.factories import ProductFactory

    def png(colour):
        out = io.BytesIO()
        Image.new("RGB", (64, 48), colour).save(out, "PNG")
        return out.getvalue()

    bodies = {"https://cdn.example/a.png": png("red"), "https://cdn.example/b.png": png("red")}
    bodies["https://cdn.example/c.png"] = png("blue")
    fetcher = SimpleNamespace(get=lambda url, **kw: SimpleNamespace(body=bodies[url]))
    product = ProductFactory()
    outcomes = [
        _download_one(fetcher, ProductImage.objects.create(product=product, source_url=url))
        for url in bodies
    ]
    assert outcomes == ["downloaded", "reused", "downloaded"]
    assert ImageAsset.objects.count() == 2
