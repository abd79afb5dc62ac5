"""catalog.services: constraint-based upserts, deactivation, fetch state, shared images."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from catalog import services
from catalog.models import FetchState, Product, ProductImage
from pipeline.platforms.base import FetchRecord
from tests.factories import ImageAssetFactory, ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db


def _item(ext="p1", **kw):
    data = {
        "external_id": ext,
        "url": f"https://s.example/{ext}",
        "title": "Mug",
        "price": Decimal("9.50"),
        "currency": "EUR",
        "availability": "in_stock",
        "image_urls": ["https://cdn/a.jpg", "https://cdn/b.jpg"],
    }
    data.update(kw)
    return services.ProductData(**data)


def test_upsert_product_updates_price_without_duplicating():
    store = StoreFactory()
    now = timezone.now()
    first = services.upsert_products(store=store, items=[_item()], seen_at=now)
    again = services.upsert_products(store=store, items=[_item()], seen_at=now)
    changed = services.upsert_products(store=store, items=[_item(price=Decimal("11"))], seen_at=now)
    assert (first.created, again.unchanged, changed.updated) == (1, 1, 1)
    product = Product.objects.get()
    assert product.price == Decimal("11.00")
    assert product.first_seen_at == now
    assert list(product.images.values_list("source_url", "position")) == [
        ("https://cdn/a.jpg", 0),
        ("https://cdn/b.jpg", 1),
    ]


def test_duplicates_within_a_page_become_one_product():
    store = StoreFactory()
    counts = services.upsert_products(
        store=store, items=[_item(), _item(title="Mug 2")], seen_at=timezone.now()
    )
    assert counts.created == 1
    assert Product.objects.get().title == "Mug 2"


def test_image_list_changes_keep_known_rows_and_their_ids():
    store = StoreFactory()
    services.upsert_products(store=store, items=[_item()], seen_at=timezone.now())
    b_id = ProductImage.objects.get(source_url="https://cdn/b.jpg").pk
    services.upsert_products(
        store=store,
        items=[_item(image_urls=["https://cdn/b.jpg", "https://cdn/c.jpg"])],
        seen_at=timezone.now(),
    )
    rows = dict(ProductImage.objects.values_list("source_url", "pk"))
    assert set(rows) == {"https://cdn/b.jpg", "https://cdn/c.jpg"}
    assert rows["https://cdn/b.jpg"] == b_id
    assert ProductImage.objects.get(pk=b_id).position == 0


def test_deactivate_missing_products_never_deletes():
    store = StoreFactory()
    old = timezone.now() - timedelta(days=1)
    gone = ProductFactory(store=store, last_seen_at=old)
    seen = ProductFactory(store=store, last_seen_at=timezone.now())
    other_store = ProductFactory(last_seen_at=old)
    assert (
        services.deactivate_missing_products(
            store=store, seen_since=timezone.now() - timedelta(hours=1)
        )
        == 1
    )
    gone.refresh_from_db()
    seen.refresh_from_db()
    other_store.refresh_from_db()
    assert (gone.is_active, seen.is_active, other_store.is_active) == (False, True, True)


def test_inactive_product_seen_again_is_reactivated():
    store = StoreFactory()
    services.upsert_products(store=store, items=[_item()], seen_at=timezone.now())
    Product.objects.update(is_active=False)
    counts = services.upsert_products(store=store, items=[_item()], seen_at=timezone.now())
    assert counts.updated == 1
    assert Product.objects.get().is_active


def test_touch_products_reactivates_with_a_new_updated_at_and_leaves_the_rest_alone():
    """Search's snapshot and keyword index learn of changes since their build from updated_at:
    a product coming back must carry a new one; one merely seen again keeps its own."""
    store = StoreFactory()
    long_ago = timezone.now() - timedelta(days=3)
    back = ProductFactory(store=store, external_id="back", is_active=False)
    seen = ProductFactory(store=store, external_id="seen")
    Product.objects.update(updated_at=long_ago)
    now = timezone.now()
    assert services.touch_products(store=store, external_ids=["back", "seen"], seen_at=now) == 2
    back.refresh_from_db()
    seen.refresh_from_db()
    assert (back.is_active, back.updated_at > long_ago, back.last_seen_at) == (True, True, now)
    assert (seen.is_active, seen.updated_at, seen.last_seen_at) == (True, long_ago, now)


def test_record_fetch_states_upserts_per_url():
    store = StoreFactory()
    rec = FetchRecord("https://s.example/products.json", 200, etag='"a"', items=["1", "2"])
    services.record_fetch_states(store=store, records=[rec], fetched_at=timezone.now())
    services.record_fetch_states(
        store=store, records=[replace(rec, etag='"b"')], fetched_at=timezone.now()
    )
    state = FetchState.objects.get()
    assert (state.etag, state.items, state.status_code, state.failures) == (
        '"b"',
        ["1", "2"],
        200,
        0,
    )
    failed = FetchRecord("https://s.example/x.json", 503, error="HTTP 503")
    services.record_fetch_states(store=store, records=[failed], fetched_at=timezone.now())
    assert FetchState.objects.get(url=failed.url).failures == 1


def test_flag_shared_images_marks_assets_used_by_many_products_of_a_store():
    store = StoreFactory()
    chart = ImageAssetFactory()
    own = [ProductImageFactory(product=ProductFactory(store=store)) for _ in range(3)]
    charts = [ProductImageFactory(product=i.product, asset=chart, position=1) for i in own]
    assert services.flag_shared_images(store=store, min_products=3) == 3
    assert all(ProductImage.objects.get(pk=c.pk).is_shared for c in charts)
    assert not any(ProductImage.objects.get(pk=i.pk).is_shared for i in own)


def test_get_or_create_asset_is_unique_per_hash():
    kwargs = {
        "sha256": "ab" * 32,
        "width": 4,
        "height": 4,
        "format": "PNG",
        "byte_size": 10,
        "thumbnail_name": "thumbs/ab/ab/x.jpg",
        "placeholder": "data:,",
    }
    a = services.get_or_create_asset(**kwargs)
    b = services.get_or_create_asset(**{**kwargs, "width": 99})
    assert a.pk == b.pk
    assert b.width == 4
