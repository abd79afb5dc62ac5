"""Stage `build_index`: publish, nothing-to-do, incremental updates, full rebuilds, crash safety."""

import os

import numpy as np
import pytest
from django.core.management import call_command

from pipeline.indexing import build_index, publish
from search.index import get_index, published_dir
from search.models import Embedding
from tests.factories import ProductFactory, ProductImageFactory

pytestmark = pytest.mark.django_db
DIM = 16
MODEL = "test-model"


@pytest.fixture(autouse=True)
def _model(settings):
    settings.MEEPO_CLIP_MODEL = MODEL
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0


def unit(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, DIM)).astype(np.float32) + 1.0
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def add_images(n, *, seed=0, model=MODEL, **product_kwargs):
    """n product images, each with a planted embedding; returns [(image, vector)]."""
    out = []
    for vector in unit(n, seed):
        image = ProductImageFactory(product=ProductFactory(**product_kwargs))
        Embedding.objects.create(
            asset=image.asset, model_name=model, dim=DIM, vector=vector.tobytes()
        )
        out.append((image, vector))
    return out


def top_id(vector):
    return int(get_index().search(vector, 1)[1][0])


def test_first_build_publishes_an_exact_index_with_a_manifest():
    images = add_images(20)
    report = build_index()
    assert report.status == "published"
    assert (report.mode, report.index_type, report.count) == ("full", "flat", 20)
    index = get_index()
    manifest = index.manifest
    assert manifest.model == MODEL
    assert (manifest.dim, manifest.count) == (DIM, 20)
    assert manifest.recall_at_10 == 1.0
    assert {"p50", "p99"} <= set(manifest.latency_ms)
    assert manifest.catalogue.images == 20
    assert manifest.build.mode == "full"
    image, vector = images[7]
    assert top_id(vector) == image.pk


def test_second_run_is_nothing_to_do_and_publishes_nothing():
    add_images(5)
    first = build_index()
    second = build_index()
    assert second.status == "nothing to do"
    assert published_dir().name == first.version


def test_nothing_to_index_publishes_nothing():
    assert build_index().status == "empty"
    assert published_dir() is None


def test_new_images_are_added_and_inactive_products_disappear():
    images = add_images(10)
    build_index()
    new = add_images(3, seed=1)
    gone_image, gone_vector = images[0]
    gone_image.product.is_active = False
    gone_image.product.save()
    report = build_index()
    assert (report.mode, report.added, report.removed, report.count) == ("incremental", 3, 1, 12)
    index = get_index()
    assert gone_image.pk not in index.search(gone_vector, 20)[1]
    assert top_id(new[2][1]) == new[2][0].pk


def test_shared_images_and_other_models_are_not_indexed():
    images = add_images(4)
    add_images(2, seed=5, model="other-model")
    images[0][0].is_shared = True
    images[0][0].save()
    assert build_index().count == 3


def test_re_embedded_image_is_updated_in_the_index():
    images = add_images(5)
    build_index()
    image, _ = images[2]
    new_vector = unit(1, seed=42)[0]
    row = Embedding.objects.get(asset=image.asset)
    row.vector = new_vector.tobytes()
    row.save()
    report = build_index()
    assert (report.status, report.added, report.removed) == ("published", 1, 1)
    assert top_id(new_vector) == image.pk


def test_ivf_index_updates_incrementally_then_rebuilds_when_outgrown(settings):
    settings.MEEPO_INDEX_EXACT_MAX = 100  # IVF from 100 vectors on
    settings.MEEPO_INDEX_IVF_FLAT_MAX = 0  # IVF-SQ8 right above exact
    settings.MEEPO_INDEX_RECALL = 0.8
    images = add_images(400)
    first = build_index()
    assert (first.index_type, first.mode) == ("ivf_sq8", "full")
    add_images(50, seed=1)
    images[0][0].product.is_active = False
    images[0][0].product.save()
    second = build_index()
    assert (second.mode, second.added, second.removed, second.count) == ("incremental", 50, 1, 449)
    assert get_index().manifest.params["tuned_for"] == 400
    assert images[0][0].pk not in get_index().search(images[0][1], 50)[1]
    add_images(400, seed=2)  # more than twice the size it was tuned for
    third = build_index()
    assert (third.mode, third.count) == ("full", 849)
    assert get_index().manifest.params["tuned_for"] == 849


def test_model_change_builds_a_new_index_for_the_new_model(settings):
    add_images(5)
    build_index()
    settings.MEEPO_CLIP_MODEL = "model-2"
    add_images(3, seed=3, model="model-2")
    report = build_index()
    assert (report.mode, report.count) == ("full", 3)
    assert get_index().manifest.model == "model-2"


def test_crash_mid_publish_leaves_previous_index_serving_and_next_run_recovers(monkeypatch):
    add_images(5)
    first = build_index()
    add_images(2, seed=1)

    def power_cut(*args):
        raise OSError("disk full")

    monkeypatch.setattr(publish, "swap_current", power_cut)
    with pytest.raises(OSError, match="disk full"):
        build_index()
    assert published_dir().name == first.version
    assert get_index().ntotal == 5
    monkeypatch.undo()
    second = build_index()
    assert second.status == "published"
    assert get_index().ntotal == 7
    names = sorted(os.listdir(published_dir().parent))
    assert names == sorted([first.version, second.version, "current"])


def test_crash_while_writing_files_leaves_no_half_version(monkeypatch):
    add_images(5)
    first = build_index()
    add_images(1, seed=1)
    monkeypatch.setattr(publish, "write_manifest", lambda *a: (_ for _ in ()).throw(OSError("x")))
    with pytest.raises(OSError, match="x"):
        build_index()
    root = published_dir().parent
    assert sorted(os.listdir(root)) == sorted([first.version, "current"])


def test_keeps_only_the_configured_number_of_versions(settings):
    settings.MEEPO_INDEX_KEEP = 2
    for seed in range(4):
        add_images(1, seed=seed)
        build_index()
    versions = [p for p in published_dir().parent.iterdir() if not p.is_symlink()]
    assert len(versions) == 2
    assert published_dir() in versions


def test_dry_run_and_force(capsys):
    add_images(3)
    assert build_index(dry_run=True).status == "dry run"
    assert published_dir() is None
    first = build_index()
    forced = build_index(force=True)
    assert (forced.status, forced.mode) == ("published", "full")
    assert forced.version != first.version
    call_command("build_index")
    assert "nothing to do" in capsys.readouterr().out


def test_asset_with_vectors_for_two_models_is_indexed_once_per_model(settings):
    images = add_images(3)
    for image, vector in images:
        Embedding.objects.create(
            asset=image.asset, model_name="other", dim=DIM, vector=(vector * -1).tobytes()
        )
    report = build_index()
    assert report.count == 3
    assert sorted(get_index().ids.tolist()) == sorted(i.pk for i, _ in images)
    image, vector = images[1]
    assert top_id(vector) == image.pk
    other = Embedding.objects.get(asset=images[0][0].asset, model_name="other")
    other.save()  # another model's vector changing is no change for this index
    assert build_index().status == "nothing to do"


def test_index_is_published_empty_when_every_image_leaves():
    images = add_images(3)
    build_index()
    for image, _ in images:
        image.product.is_active = False
        image.product.save()
    report = build_index()
    assert (report.status, report.count, report.removed) == ("published", 0, 3)
    assert get_index().ntotal == 0
    assert len(get_index().search(images[0][1], 5)[1]) == 0
