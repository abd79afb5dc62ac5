"""Database constraints and the full-text index keep the catalogue consistent."""

import pytest
from django.db import IntegrityError, connection, transaction

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
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rowid FROM catalog_product_fts WHERE catalog_product_fts MATCH %s", [query]
        )
        return [row[0] for row in cursor.fetchall()]


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


def test_sqlite_runs_in_wal_mode():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
