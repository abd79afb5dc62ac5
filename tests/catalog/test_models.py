"""Database constraints and the full-text index keep the catalogue consistent."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from catalog.models import Product, ProductVariant, on_sale
from search import keyword
from tests.factories import ImageAssetFactory, ProductFactory, StoreFactory

pytestmark = pytest.mark.django_db


def test_one_product_per_store_and_platform_id():
    product = ProductFactory(external_id="42")
    ProductFactory(external_id="42")  # another store: fine
    with pytest.raises(IntegrityError), transaction.atomic():
        ProductFactory(store=product.store, external_id="42")


def test_one_stored_image_per_content_hash():
    ImageAssetFactory(sha256="a" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        ImageAssetFactory(sha256="a" * 64)


def test_negative_price_is_refused_by_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        ProductFactory(price=-1)


def _fts(query: str) -> list[int]:
    """Products the database's own full-text index finds for one word (no Python in between)."""
    return sorted(keyword.backend().matching_any((query,), list(Product.objects.values_list("pk", flat=True))))  # fmt: skip


def test_full_text_index_follows_inserts_updates_and_deletes():
    store = StoreFactory()
    pillow = ProductFactory(store=store, title="Fluffy striped pillow", tags=["salmon"])
    assert _fts("pillows") == [pillow.pk]  # porter stemming
    assert _fts("salmon") == [pillow.pk]  # tags are indexed
    pillow.title = "Woollen blanket"
    pillow.save()
    assert _fts("pillow") == []
    assert _fts("blanket") == [pillow.pk]
    pillow.delete()
    assert _fts("blanket") == []


@pytest.mark.only_on("sqlite")
def test_sqlite_runs_in_wal_mode():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"


@pytest.mark.only_on("postgresql")
def test_postgres_search_vector_is_generated_and_indexed_by_the_database():
    """A raw-SQL write (no Django signal, no Python) still updates the tsvector, and the GIN
    index exists: nothing outside the database maintains keyword search."""
    product = ProductFactory(title="Fluffy pillow")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE catalog_product SET title = 'Crème brûlée dish' WHERE id = %s", [product.pk])  # fmt: skip
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'catalog_product_search_gin'")  # fmt: skip
        assert "gin (search_vector)" in cursor.fetchone()[0]
    assert _fts("creme") == [product.pk]  # accents folded
    assert _fts("dishes") == [product.pk]  # stemmed
    assert _fts("pillow") == []


@pytest.mark.parametrize(
    ("price", "list_price", "expected"),
    [("9.99", "12.00", True), ("12.00", "12.00", False), ("12.00", "9.99", False),
     (None, "12.00", False), ("9.99", None, False)],
)  # fmt: skip
def test_on_sale_is_one_rule_for_products_and_variants(price, list_price, expected):
    price, list_price = (Decimal(v) if v else None for v in (price, list_price))
    assert on_sale(price, list_price) is expected
    assert Product(price=price, list_price=list_price).is_on_sale is expected
    assert ProductVariant(price=price, list_price=list_price).is_on_sale is expected
