"""build_index writes the columnar snapshot into every version it publishes."""

import numpy as np
import pytest

from catalog.models import Product
from pipeline.indexing import build_index
from search import selectors
from search.index import published_dir
from search.models import Embedding
from search.selectors import SearchFilters
from search.snapshot import Snapshot
from tests.factories import ProductFactory, ProductImageFactory

pytestmark = pytest.mark.django_db
DIM = 16
MODEL = "test-model"


@pytest.fixture(autouse=True)
def _model(settings):
    settings.MEEPO_CLIP_MODEL = MODEL
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0


def add_images(n, *, seed, **product_kwargs):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, DIM)).astype(np.float32) + 1.0
    for vector in x / np.linalg.norm(x, axis=1, keepdims=True):
        image = ProductImageFactory(product=ProductFactory(**product_kwargs))
        Embedding.objects.create(
            asset=image.asset, model_name=MODEL, dim=DIM, vector=vector.tobytes()
        )


def test_each_published_version_has_a_snapshot_matching_the_catalogue():
    add_images(8, seed=0, brand="Acme")
    add_images(5, seed=1, brand="Birch")
    assert build_index().status == "published"
    first = published_dir()
    snap = Snapshot.load(first)
    ids = np.load(first / "ids.npy").tolist()
    assert snap.cols["rows"].tolist() == ids
    assert snap.owners(ids) == selectors.image_products(ids)
    acme = SearchFilters(brands=("Acme",))
    assert (
        snap.allowed_image_ids(acme).tolist() == selectors.allowed_image_ids(filters=acme).tolist()
    )
    pids = list(Product.objects.values_list("pk", flat=True))
    assert snap.facet_counts(product_ids=pids, filters=SearchFilters()) == selectors.facet_counts(
        product_ids=pids, filters=SearchFilters()
    )

    add_images(3, seed=2, brand="Cobalt")  # an incremental update writes its own snapshot
    assert build_index().status == "published"
    second = published_dir()
    assert second != first
    snap2 = Snapshot.load(second)
    assert len(snap2) == 16
    assert "Cobalt" in snap2.meta["codes"]["brand"]
    assert "Cobalt" not in snap.meta["codes"]["brand"]
