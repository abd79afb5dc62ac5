"""The admin shows stores with crawl history and errors, products, images and fetch state."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.models import CrawlRun, FetchState, Product, ProductVariant
from tests.factories import ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(admin_client):
    store = StoreFactory(name="Demo shop")
    CrawlRun.objects.create(
        store=store,
        started_at=timezone.now(),
        status=CrawlRun.Status.PARTIAL,
        created=5,
        failed=1,
        errors=[{"url": "https://x/p/1", "reason": "soft 404"}],
    )
    ProductImageFactory(product__store=store, product__title="Striped salmon pillow")
    FetchState.objects.create(store=store, url="https://x/sitemap.xml", status_code=304)
    return admin_client, store


@pytest.mark.parametrize(
    "model", ["store", "crawlrun", "product", "productimage", "imageasset", "fetchstate"]
)
def test_admin_changelists_render(staff, model):
    client, _ = staff
    response = client.get(reverse(f"admin:catalog_{model}_changelist"))
    assert response.status_code == 200


def test_store_page_shows_crawl_history_and_errors(staff):
    client, store = staff
    html = client.get(reverse("admin:catalog_store_change", args=[store.pk])).content.decode()
    assert "Finished with failures" in html
    assert "soft 404" in html


def test_product_search_and_filters(staff):
    client, _ = staff
    url = reverse("admin:catalog_product_changelist")
    assert "Striped salmon pillow" in client.get(url, {"q": "salmon"}).content.decode()
    assert "Striped salmon pillow" not in client.get(url, {"q": "fork"}).content.decode()
    assert (
        client.get(url, {"is_active__exact": "1", "availability__exact": "in_stock"}).status_code
        == 200
    )


def test_product_page_shows_identifiers_variants_and_sources(staff):
    client, _ = staff
    product = Product.objects.get(title="Striped salmon pillow")
    Product.objects.filter(pk=product.pk).update(
        sku="PIL-1",
        gtin="4006381333931",
        price=Decimal("19.00"),
        field_sources={"price": "json-ld", "gtin": "microdata"},
    )
    ProductVariant.objects.create(
        product=product,
        external_id="v1",
        title="Salmon / L",
        sku="PIL-1-L",
        price=Decimal("19.00"),
        list_price=Decimal("25.00"),
        image=product.images.get(),
    )
    html = client.get(reverse("admin:catalog_product_change", args=[product.pk])).content.decode()
    assert "PIL-1-L" in html
    assert "Salmon / L" in html
    assert "<td>price</td><td>19.00</td><td><code>json-ld</code></td>" in html
    assert "<td>gtin</td><td>4006381333931</td><td><code>microdata</code></td>" in html
    url = reverse("admin:catalog_product_changelist")
    for code in ("4006381333931", "PIL-1-L"):
        assert "Striped salmon pillow" in client.get(url, {"q": code}).content.decode()


def test_store_list_shows_last_status_without_a_query_per_store(
    staff, django_assert_max_num_queries
):
    client, _store = staff
    url = reverse("admin:catalog_store_changelist")
    client.get(url)  # warm: session, user, content types
    with django_assert_max_num_queries(12) as few:
        first = client.get(url)
    for _n in range(8):
        other = StoreFactory()
        CrawlRun.objects.create(store=other, started_at=timezone.now(), status="failed")
    with django_assert_max_num_queries(len(few.captured_queries)):
        body = client.get(url).content.decode()
    assert first.status_code == 200
    assert body.count(">Failed<") == 8
    assert ">Finished with failures<" in body
