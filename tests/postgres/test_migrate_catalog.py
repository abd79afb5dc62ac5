"""manage.py migrate_catalog copies the catalogue into a real PostgreSQL 15 server."""

from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone

from catalog.models import CrawlRun, FetchState, Host, Product, ProductImage, ProductVariant
from search.models import Embedding
from tests.factories import ImageAssetFactory, ProductFactory, StoreFactory
from tests.postgres.server import TempPostgres

pytestmark = pytest.mark.django_db


@pytest.fixture
def postgres():
    with TempPostgres() as pg:
        yield pg


def _catalogue():
    store = StoreFactory(slug="shop")
    CrawlRun.objects.create(store=store, started_at=timezone.now(), created=2)
    FetchState.objects.create(store=store, url="https://shop.example/p/1", etag='"a"')
    Host.objects.create(origin="https://shop.example", backoff_delay=2.5)
    mug = ProductFactory(store=store, title="Crème mug", tags=["kitchen"], gtin="4006381333931")
    ProductFactory(store=store, title="Walnut desk lamp")
    asset = ImageAssetFactory(sha256="b" * 64)
    image = ProductImage.objects.create(product=mug, asset=asset, source_url="https://s/1.jpg")
    ProductVariant.objects.create(
        product=mug, external_id="v1", options={"Size": "L", "Colour": "Red"}, image=image
    )
    vector = np.arange(4, dtype="<f4")
    Embedding.objects.create(asset=asset, model_name="tiny", dim=4, vector=vector.tobytes())
    return mug


def test_copies_every_table_with_ids_times_and_counts(postgres):
    mug = _catalogue()
    out = StringIO()
    call_command("migrate_catalog", "--to", postgres.url, stdout=out)
    assert "counts match" in out.getvalue()
    assert "catalog.Product: 2" in out.getvalue()

    def one(sql):
        return postgres.psql("meepo", sql).strip()

    assert one("SELECT count(*) FROM catalog_product") == "2"
    assert one("SELECT count(*) FROM catalog_crawlrun") == "1"
    assert one("SELECT count(*) FROM catalog_host") == "1"
    assert one("SELECT count(*) FROM catalog_fetchstate") == "1"
    assert one(f"SELECT title FROM catalog_product WHERE id = {mug.pk}") == "Crème mug"
    # Timestamps are the source's, not the time of the copy.
    copied = one(f"SELECT extract(epoch FROM updated_at)::numeric(20,3) FROM catalog_product WHERE id = {mug.pk}")  # fmt: skip
    assert float(copied) == pytest.approx(mug.updated_at.timestamp(), abs=0.01)
    # Embeddings are byte for byte the same; variant options keep the store's order.
    assert one("SELECT encode(vector, 'hex') FROM search_embedding") == np.arange(4, dtype="<f4").tobytes().hex()  # fmt: skip
    assert (
        one("SELECT options::text FROM catalog_productvariant") == '{"Size": "L", "Colour": "Red"}'
    )
    # The database keeps the keyword index of the copied rows: accents folded, stemmed.
    assert one("SELECT id FROM catalog_product WHERE search_vector @@ to_tsquery('meepo', 'creme & mugs')") == str(mug.pk)  # fmt: skip
    assert one("SELECT backoff_delay FROM catalog_host") == "2.5"
    # Sequences moved past the copied ids: the next insert gets a new id.
    next_id = one("SELECT nextval(pg_get_serial_sequence('catalog_product', 'id'))")
    assert int(next_id) > max(Product.objects.values_list("pk", flat=True))
    assert not hasattr(connections._connections, "migrate_catalog_target")  # closed, forgotten


def test_refuses_a_target_that_already_holds_a_catalogue(postgres):
    _catalogue()
    call_command("migrate_catalog", "--to", postgres.url, stdout=StringIO())
    with pytest.raises(CommandError, match="already holds a catalogue"):
        call_command("migrate_catalog", "--to", postgres.url, stdout=StringIO())
    assert postgres.psql("meepo", "SELECT count(*) FROM catalog_product").strip() == "2"


def test_only_postgres_targets():
    with pytest.raises(CommandError, match="postgres://"):
        call_command("migrate_catalog", "--to", "sqlite:////tmp/x.sqlite3", stdout=StringIO())
