"""Products deleted after the index build (the admin's delete action, a store deleted with its
products by cascade: `queryset.delete()`) leave no row for the "changed since the build" queries
(`updated_at` on its index) to see. Their tombstones (catalog.ProductDeletion, written by a
post_delete receiver) are read by those same queries, so the snapshot's owners, the keyword
index's hits, counts and facets drop them at once, as the database does."""

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Product, ProductDeletion, Store
from search import keyword_delta, keyword_engine, live_rows, selectors
from search.index import get_index
from search.selectors import SearchFilters
from search.snapshot import for_index
from tests.factories import ProductFactory, StoreFactory
from tests.search.test_keyword_engine import publish_with_keywords
from tests.search.test_result_counts import plant, shop, soup  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[True, False], ids=["snapshot", "no-snapshot"])
def built_shop(request, shop, settings):  # noqa: F811
    """`shop`, its products last changed an hour before the build read them (so the snapshot
    and keyword index trust their copies), MEEPO_SEARCH_SNAPSHOT on or off."""
    settings.MEEPO_SEARCH_SNAPSHOT = request.param
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    Product.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    keyword_delta.forget_cache()
    assert keyword_engine.current() is not None
    assert (for_index(get_index()) is not None) == request.param
    return shop


def api(client, **params):
    return client.get("/api/search", params).json()


def ids(body):
    return [hit["id"] for hit in body["results"]]


def test_a_deleted_keyword_match_leaves_page_api_and_counts(client, built_shop):
    words = built_shop["words"]
    # (no page asked before: its candidates would be cached for MEEPO's 60 s, deleted or not)
    assert selectors.keyword_count(query="teapot", filters=SearchFilters()) == 1
    Product.objects.filter(pk=words.pk).delete()  # the admin's delete action
    after = api(client, q="teapot")
    assert words.pk not in ids(after)
    assert after["total"] == len(ids(after)) == 3
    brands = {row["value"] for row in after["facets"].get("brand", [])}
    assert "Nordhus" not in brands
    page = soup(client.get("/search", {"q": "teapot"}))
    assert "Sage teapot" not in page.get_text()
    assert selectors.keyword_count(query="teapot", filters=SearchFilters()) == 0
    assert selectors.keyword_hits(query="teapot", filters=SearchFilters(), limit=5) == []


def test_a_deleted_look_alike_leaves_the_results(client, built_shop):
    gone = built_shop["looks"][0]
    gone.delete()  # one object: post_delete too
    after = api(client, q="teapot")
    assert gone.pk not in ids(after)
    assert after["total"] == len(ids(after)) == 3
    page = soup(client.get("/search", {"q": "teapot"}))
    assert gone.title not in page.get_text()


def test_a_store_deleted_with_its_products(client, built_shop):
    Store.objects.filter(slug="home").delete()  # cascade
    after = api(client, q="teapot")
    assert after["results"] == []
    assert after["total"] == 0
    assert selectors.keyword_count(query="fork", filters=SearchFilters()) == 0
    assert client.get("/search", {"q": "teapot"}).status_code == 200


def test_similar_products_leave_out_a_deleted_one(client, built_shop):
    looks = built_shop["looks"]
    looks[1].delete()
    page = soup(client.get(f"/products/{looks[0].pk}?similar=2"))
    assert looks[1].title not in page.get_text()


def test_deleted_then_recreated_with_the_same_external_id(client, built_shop):
    words = built_shop["words"]
    store, external_id = words.store, words.external_id
    words.delete()
    again = ProductFactory(
        store=store, external_id=external_id, title="Sage teapot", brand="Nordhus", price=61
    )
    assert again.pk != words.pk
    body = api(client, q="teapot")
    assert again.pk in ids(body)
    assert words.pk not in ids(body)
    assert selectors.keyword_count(query="teapot", filters=SearchFilters()) == 1
    hits = selectors.keyword_hits(query="teapot", filters=SearchFilters(), limit=5)
    assert [pid for pid, _ in hits] == [again.pk]


def test_tombstones_are_written_per_object_for_queryset_and_cascade_deletes():
    store = StoreFactory()
    made = [ProductFactory(store=store) for _ in range(3)]
    other = ProductFactory()
    Product.objects.filter(pk=made[0].pk).delete()
    assert set(ProductDeletion.objects.values_list("product_id", flat=True)) == {made[0].pk}
    Store.objects.filter(pk=store.pk).delete()
    assert set(ProductDeletion.objects.values_list("product_id", flat=True)) == {p.pk for p in made}
    assert Product.objects.filter(pk=other.pk).exists()


def test_changed_ids_include_products_deleted_since_the_read(tmp_path):
    from tests.search.test_fresh_owners_changes import built

    asked, snap = built(tmp_path)
    assert live_rows.changed_ids(snap).tolist() == []
    victim = Product.objects.order_by("pk").first().pk
    Product.objects.filter(pk=victim).delete()
    assert live_rows.changed_ids(snap).tolist() == [victim]
    assert snap.fresh_owners(asked) == selectors.image_products(asked)
    # A tombstone from before the read is not a change since.
    ProductDeletion.objects.update(deleted_at=timezone.now() - timedelta(hours=2))
    assert live_rows.changed_ids(snap).tolist() == []


def test_keyword_engine_counts_and_hits_without_a_deleted_product(settings):
    store = StoreFactory(slug="s1")
    made = [ProductFactory(store=store, title=f"Oak table {i}") for i in range(6)]
    publish_with_keywords(settings)
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    Product.objects.filter(pk__in=[made[0].pk, made[1].pk]).delete()
    for filters in (SearchFilters(), SearchFilters(stores=("s1",))):
        hits = selectors.keyword_hits(query="oak", filters=filters, limit=10)
        assert sorted(pid for pid, _ in hits) == sorted(p.pk for p in made[2:])
        assert selectors.keyword_count(query="oak", filters=filters) == 4
        selectors.keyword_hits(query="oak", filters=filters, limit=2)  # the count reuses these
        assert selectors.keyword_count(query="oak", filters=filters) == 4
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "database"
    assert selectors.keyword_count(query="oak", filters=SearchFilters()) == 4


def test_raw_sql_deletes_leave_tombstones_too():
    from django.db import connection

    product = ProductFactory()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM catalog_productimage WHERE product_id = %s", [product.pk])
        cursor.execute("DELETE FROM catalog_productvariant WHERE product_id = %s", [product.pk])
        cursor.execute("DELETE FROM catalog_product WHERE id = %s", [product.pk])
    (tombstone,) = ProductDeletion.objects.all()
    assert tombstone.product_id == product.pk
    assert abs(tombstone.deleted_at - timezone.now()) < timedelta(minutes=1)


def test_prune_keeps_what_the_oldest_kept_version_needs(tmp_path):
    now = timezone.now()
    for hours in (80, 30, 20, 1):
        ProductDeletion.objects.create(product_id=hours, deleted_at=now - timedelta(hours=hours))
    assert live_rows.prune_deletions(tmp_path / "none") == 0  # no index: nothing pruned
    (tmp_path / "current").symlink_to(tmp_path)  # not a version
    (tmp_path / ".tmp-20990101T000000000000Z").mkdir()  # a build in progress: not a version
    for hours in (
        2,
        50,
    ):  # versions started 2 h and 50 h ago: tombstones 1 day before the oldest go
        stamp = (now - timedelta(hours=hours)).strftime("%Y%m%dT%H%M%S%fZ")
        (tmp_path / stamp).mkdir()
    assert live_rows.prune_deletions(tmp_path) == 1
    assert sorted(ProductDeletion.objects.values_list("product_id", flat=True)) == [1, 20, 30]


def test_each_index_build_prunes_old_tombstones(shop):  # noqa: F811
    from pipeline.indexing import build_index

    ProductDeletion.objects.create(product_id=1, deleted_at=timezone.now() - timedelta(days=3))
    assert build_index(force=True).status == "published"
    assert not ProductDeletion.objects.exists()
