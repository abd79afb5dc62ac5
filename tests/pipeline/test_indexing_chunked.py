"""build_index in bounded chunks: tiny chunk sizes give the same files and results as one chunk."""

import numpy as np
import pytest

from pipeline.indexing import build as indexing_build
from pipeline.indexing import build_index, catalogue, faiss_build, vectors
from pipeline.indexing.vectors import ArraySource, VectorFile, VectorWriter, copy_runs
from search.index import VECTORS_FILE, get_index, published_dir
from search.models import Embedding
from tests.factories import ProductFactory, ProductImageFactory

DIM = 16
MODEL = "test-model"


@pytest.fixture(autouse=True)
def _model(settings):
    settings.MEEPO_CLIP_MODEL = MODEL
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Chunks of 7 vectors and database reads of 5 rows: every chunked path runs many times."""
    monkeypatch.setattr(vectors, "CHUNK", 7)
    monkeypatch.setattr(catalogue, "FETCH_CHUNK", 5)


def unit(n, seed, dim=DIM):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32) + 1.0
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def add_images(n, *, seed=0):
    out = []
    for vector in unit(n, seed):
        image = ProductImageFactory(product=ProductFactory())
        Embedding.objects.create(
            asset=image.asset, model_name=MODEL, dim=DIM, vector=vector.tobytes()
        )
        out.append((image, vector))
    return out


def published_vectors():
    return np.load(published_dir() / VECTORS_FILE)


def db_vectors(images):
    """The expected vectors.npy: database vectors in image id order."""
    ordered = sorted(images, key=lambda iv: iv[0].pk)
    return np.vstack([v for _, v in ordered])


@pytest.mark.django_db
def test_chunked_flat_build_writes_every_vector_exactly(tiny_chunks):
    images = add_images(23)
    report = build_index()
    assert (report.index_type, report.count) == ("flat", 23)
    stored = published_vectors()
    assert stored.dtype == np.float32
    np.testing.assert_array_equal(stored, db_vectors(images))
    for image, vector in images[::5]:
        assert int(get_index().search(vector, 1)[1][0]) == image.pk


@pytest.mark.django_db
def test_chunked_ivf_build_finds_planted_vectors_and_can_store_float16(
    tiny_chunks, settings, monkeypatch
):
    monkeypatch.setattr(indexing_build, "ANN_VECTORS_DTYPE", np.float16)
    settings.MEEPO_INDEX_EXACT_MAX = 50
    settings.MEEPO_INDEX_IVF_FLAT_MAX = 0  # IVF-SQ8 right above exact
    settings.MEEPO_INDEX_RECALL = 0.8
    images = add_images(160)
    report = build_index()
    assert report.index_type == "ivf_sq8"
    stored = published_vectors()
    assert stored.dtype == np.float16
    np.testing.assert_allclose(stored, db_vectors(images), atol=1e-3)
    assert get_index().manifest.vectors_dtype == "float16"
    hits = [int(get_index().search(v, 1)[1][0]) == im.pk for im, v in images[::8]]
    assert np.mean(hits) >= 0.9


@pytest.mark.django_db
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_incremental_update_writes_the_same_vectors_as_a_full_rebuild(
    tiny_chunks, settings, monkeypatch, dtype
):
    monkeypatch.setattr(indexing_build, "ANN_VECTORS_DTYPE", dtype)
    settings.MEEPO_INDEX_EXACT_MAX = 50
    settings.MEEPO_INDEX_IVF_FLAT_MAX = 0  # IVF-SQ8 right above exact
    settings.MEEPO_INDEX_RECALL = 0.8
    images = add_images(120)
    build_index()
    new = add_images(9, seed=1)  # appended ids
    for image, _ in images[10:13] + images[40:41]:  # removed rows in the middle
        image.product.is_active = False
        image.product.save()
    changed, _ = images[70]  # re-embedded
    changed_vector = unit(1, seed=99)[0]
    row = Embedding.objects.get(asset=changed.asset)
    row.vector = changed_vector.tobytes()
    row.save()  # save() bumps updated_at, as embed --force does
    report = build_index()
    assert (report.mode, report.added, report.removed) == ("incremental", 10, 5)
    incremental = published_vectors()
    assert int(get_index().search(changed_vector, 1)[1][0]) == changed.pk
    assert int(get_index().search(new[4][1], 1)[1][0]) == new[4][0].pk
    assert build_index(force=True).mode == "full"
    np.testing.assert_array_equal(incremental, published_vectors())


def test_chunked_exact_ground_truth_matches_one_big_matrix(monkeypatch):
    x = unit(200, seed=3, dim=24)
    ids = np.arange(200, dtype=np.int64) * 5 + 1
    _, whole = faiss_build.held_out_truth(x, ids, n_queries=40)
    monkeypatch.setattr(vectors, "CHUNK", 13)
    queries, chunked = faiss_build.held_out_truth(ArraySource(x), ids, n_queries=40)
    # Same neighbours; near-ties may swap places (float sums differ by block size).
    assert [set(row) for row in chunked] == [set(row) for row in whole]
    own = queries["ids"][0]
    scores = x @ queries["vectors"][0]
    expected = [i for i in ids[np.argsort(-scores)] if i != own][:10]
    assert set(chunked[0]) == set(expected)


@pytest.mark.parametrize("few_rows", [10_000, 0])  # rows read one by one / by scanning chunks
def test_vector_file_reads_rows_in_any_order(tmp_path, monkeypatch, few_rows):
    monkeypatch.setattr(vectors, "CHUNK", 4)
    monkeypatch.setattr(vectors, "_FEW_ROWS", few_rows)
    x = unit(30, seed=4)
    with VectorWriter(tmp_path / "v.npy", x.shape, np.float32) as out:
        order = np.arange(30)
        out.write_rows(order[10:], x[10:])  # any order of row ranges
        out.write_rows(order[:10], x[:10])
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), x)  # a valid .npy file
    f = VectorFile(tmp_path / "v.npy")
    positions = np.array([29, 0, 7, 7, 15])
    np.testing.assert_array_equal(f.take(positions), x[positions])
    np.testing.assert_array_equal(np.vstack([b for _, b in f.chunks()]), x)


def test_copy_runs_groups_rows_that_advance_together():
    src = np.array([0, 1, 2, 4, 5, 6, 7])
    dst = np.array([0, 1, 2, 3, 4, 6, 7])
    assert copy_runs(src, dst) == [(0, 0, 3), (4, 3, 2), (6, 6, 2)]


def test_copied_rows_match_the_source_file(tmp_path, monkeypatch):
    monkeypatch.setattr(vectors, "CHUNK", 3)
    x = unit(20, seed=5).astype(np.float16)
    np.save(tmp_path / "old.npy", x)
    old = VectorFile(tmp_path / "old.npy")
    fresh = np.full((2, DIM), 0.5, dtype=np.float32)
    with VectorWriter(tmp_path / "new.npy", (22, DIM), np.float16) as out:
        out.copy_rows(old, 0, 0, 10)
        out.write_rows(np.array([10, 11]), fresh)
        out.copy_rows(old, 10, 12, 10)
    expected = np.vstack([x[:10], fresh.astype(np.float16), x[10:]])
    np.testing.assert_array_equal(np.load(tmp_path / "new.npy"), expected)


@pytest.mark.django_db
def test_float16_exact_subset_scan_ranks_like_float32(settings, monkeypatch):
    """With float16 vectors, filtered searches on an ANN version rank like float32 (recall ~1)."""
    from bench.planted_index import publish_arrays

    monkeypatch.setattr(indexing_build, "ANN_VECTORS_DTYPE", np.float16)
    rng = np.random.default_rng(6)
    centres = rng.normal(size=(20, 64)) + 1.5
    x = (centres[rng.integers(0, 20, 3000)] + rng.normal(scale=0.5, size=(3000, 64))).astype(
        np.float32
    )
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(1, 3001, dtype=np.int64)
    settings.MEEPO_CLIP_MODEL = "m"
    publish_arrays(ids, x, model="m", exact_max=0, target_recall=0.8)
    index = get_index()
    assert index.vectors.dtype == np.float16
    hits = []
    for q in unit(30, seed=7, dim=64):
        allowed = rng.choice(ids, size=600, replace=False)
        _, got = index.search(q, 10, allowed_ids=allowed)
        rows = allowed - 1
        expected = allowed[np.argsort(-(x[rows] @ q))[:10]]
        hits.append(len(set(got.tolist()) & set(expected.tolist())) / 10)
    assert np.mean(hits) >= 0.99


def test_held_out_truth_is_updated_exactly_without_rescanning_kept_vectors():
    x = unit(400, seed=8)
    ids = np.arange(400, dtype=np.int64) * 2 + 1
    queries, _ = faiss_build.held_out_truth(x, ids, n_queries=30)
    # Remove ids that are in many queries' lists (the hard case), and some at random.
    rng = np.random.default_rng(9)
    removed = np.union1d(queries["top_ids"][:10, :2].ravel(), rng.choice(ids, 20, replace=False))
    fresh = unit(25, seed=10)
    fresh_ids = np.arange(25, dtype=np.int64) * 2 + 2000
    updated = faiss_build.update_held_out(queries, removed, fresh, fresh_ids)
    assert updated is not None
    keep = ~np.isin(ids, removed)
    new_x, new_ids = np.vstack([x[keep], fresh]), np.concatenate([ids[keep], fresh_ids])
    _, expected = faiss_build._exact_top(new_x, new_ids, queries["vectors"], 11)
    for row, exact, want in zip(updated["top_ids"], updated["top_exact"], expected, strict=True):
        assert exact >= 11
        assert set(row[:11].tolist()) == set(want.tolist())


def test_held_out_update_gives_up_when_a_query_lost_too_many_neighbours():
    x = unit(200, seed=11)
    ids = np.arange(200, dtype=np.int64)
    queries, _ = faiss_build.held_out_truth(x, ids, n_queries=10)
    removed = queries["top_ids"][0, :25]  # 25 of query 0's 31 known neighbours: 6 left
    assert faiss_build.update_held_out(queries, removed, unit(3, seed=12), ids[:3] + 500) is None


@pytest.mark.django_db
def test_incremental_build_reuses_the_saved_held_out_queries(settings):
    settings.MEEPO_INDEX_EXACT_MAX = 50
    settings.MEEPO_INDEX_IVF_FLAT_MAX = 0  # IVF-SQ8 right above exact
    settings.MEEPO_INDEX_RECALL = 0.8
    add_images(150)
    build_index()
    first = np.load(published_dir() / "held_out.npz")["vectors"]
    add_images(5, seed=1)
    assert build_index().mode == "incremental"
    saved = np.load(published_dir() / "held_out.npz")
    np.testing.assert_array_equal(saved["vectors"], first)  # same queries, truth merged
    assert (saved["top_exact"] >= 11).all()


@pytest.mark.django_db
@pytest.mark.parametrize(("update_recall_ok", "mode", "nlist"), [(True, "incremental", 2), (False, "full", 4)])  # fmt: skip
def test_manifest_describes_the_index_an_update_or_its_fallback_built(
    settings, monkeypatch, update_recall_ok, mode, nlist
):
    # An update keeps the old version's lists (IVF2); when its recall misses the target the full
    # build that follows trains and records the new size's (IVF4), not the old one's.
    import faiss

    from search.index import INDEX_FILE
    from search.manifest import read_manifest

    settings.MEEPO_INDEX_EXACT_MAX = 50
    settings.MEEPO_INDEX_IVF_FLAT_MAX = 0  # IVF-SQ8 right above exact
    add_images(120)
    build_index()
    assert read_manifest(published_dir()).factory == "IVF2,SQ8"
    add_images(80, seed=1)  # 200 vectors plan IVF4, within the size IVF2 was tuned for
    monkeypatch.setattr(faiss_build, "meets_target", lambda recall, target: update_recall_ok)
    report = build_index()
    assert (report.mode, report.count) == (mode, 200)
    index = faiss.extract_index_ivf(faiss.read_index(str(published_dir() / INDEX_FILE)))
    manifest = read_manifest(published_dir())
    assert index.nlist == nlist
    assert (manifest.params["nlist"], manifest.factory) == (nlist, f"IVF{nlist},SQ8")
