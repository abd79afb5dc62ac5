"""SearchIndex filtered by rows (`allowed=`, from the snapshot) answers exactly what it answers
filtered by ids (`allowed_ids=`), on flat and IVF versions, and the per-version LRU of allowed
sets reuses a set without rebuilding it."""

import numpy as np
import pytest

from search import index as index_module
from search.index import SearchIndex
from tests.search.test_index import clustered, exact, publish_vectors


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """One flat and one IVF version over the same 6 000 vectors (ids are not positions)."""
    from django.conf import settings

    old = settings.MEEPO_DATA_DIR
    settings.MEEPO_DATA_DIR = str(tmp_path_factory.mktemp("allowed-rows"))
    try:
        vectors = clustered(6000)
        ids = np.arange(6000, dtype=np.int64) * 3 + 11
        flat = SearchIndex.load(publish_vectors(ids, vectors))
        ivf = SearchIndex.load(publish_vectors(ids, vectors, index_type="ivf_sq8"))
    finally:
        settings.MEEPO_DATA_DIR = old
    return {"flat": flat, "ivf": ivf, "vectors": vectors, "ids": ids}


def rows_of(index, positions):
    return index.allowed_rows(("test", tuple(positions.tolist())), lambda: positions)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
@pytest.mark.parametrize("size", [0, 1, 37, 900, 6000])
def test_rows_and_ids_give_the_same_results(versions, kind, size, monkeypatch):
    # 900 rows go through the IVF's selector (above this threshold), 37 are scanned exactly.
    monkeypatch.setattr(index_module, "EXACT_SUBSET_MAX", 500)
    index, ids = versions[kind], versions["ids"]
    positions = np.sort(np.random.default_rng(size).choice(6000, size, replace=False))
    allowed = rows_of(index, positions)
    assert allowed.count == size
    for q in clustered(8, seed=9):
        by_rows = index.search(q, 20, allowed=allowed)
        by_ids = index.search(q, 20, allowed_ids=ids[positions])
        np.testing.assert_array_equal(by_rows[1], by_ids[1])
        np.testing.assert_array_equal(by_rows[0], by_ids[0])
        assert len(by_rows[1]) == min(20, size)
        assert np.isin(by_rows[1], ids[positions]).all()


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_small_sets_are_exact_on_any_version(versions, kind):
    index, ids, vectors = versions[kind], versions["ids"], versions["vectors"]
    positions = np.arange(0, 6000, 7)
    for q in clustered(5, seed=2):
        scores, got = index.search(q, 15, allowed=rows_of(index, positions))
        exp_scores, expected = exact(vectors, ids, q, 15, ids[positions])
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_allclose(scores, exp_scores, rtol=1e-5)


def test_rank_exact_ranks_every_row_and_breaks_ties_by_id(versions):
    index, vectors, ids = versions["flat"], versions["vectors"], versions["ids"]
    positions = np.array([5, 9, 40, 41, 300])
    allowed = rows_of(index, positions)
    scores, got = index.rank_exact(vectors[40], allowed, allowed.count)
    assert sorted(got.tolist()) == ids[positions].tolist()
    assert got[0] == ids[40]
    assert (np.diff(scores) <= 0).all()
    np.testing.assert_allclose(scores, np.sort(vectors[positions] @ vectors[40])[::-1], rtol=1e-5)


@pytest.mark.parametrize("k", [2, 3, 6])
def test_equal_scores_come_in_id_order_even_at_the_cut(tmp_path, settings, k):
    # The same picture in several products: equal vectors, equal scores.
    settings.MEEPO_DATA_DIR = str(tmp_path)
    vectors = clustered(40)
    vectors[[7, 3, 30, 12]] = vectors[3]
    ids = np.arange(40, dtype=np.int64) * 2
    index = SearchIndex.load(publish_vectors(ids, vectors, model="tie"))
    allowed = rows_of(index, np.array([0, 3, 7, 12, 30, 31]))
    _, got = index.rank_exact(vectors[3], allowed, k)
    assert got.tolist()[: min(k, 4)] == [6, 14, 24, 60][: min(k, 4)]


def test_an_allowed_set_is_built_once_per_filter_and_version(versions):
    index = versions["ivf"]
    calls = []

    def build():
        calls.append(1)
        return np.arange(10, 60)

    first = index.allowed_rows(("brand", "Acme"), build)
    again = index.allowed_rows(("brand", "Acme"), build)
    other = versions["flat"].allowed_rows(("brand", "Acme"), build)
    assert first is again
    assert other is not first  # another version has its own cache
    assert len(calls) == 2
    first.vectors  # noqa: B018 - gathered once, then reused by every query vector
    assert first.vectors is first.vectors


def test_sets_over_the_byte_budget_are_not_kept(versions, monkeypatch):
    monkeypatch.setattr(index_module, "ALLOWED_CACHE_BYTES", 1000)
    index = versions["ivf"]
    calls = []
    for _ in range(2):
        index.allowed_rows(("big",), lambda: calls.append(1) or np.arange(6000))
    assert len(calls) == 2


@pytest.mark.parametrize("codes", [[], [3], [0, 5, 9], list(range(0, 40, 3))])
def test_any_of_is_isin(codes):
    from search.value_rows import any_of as _any_of

    column = np.random.default_rng(1).integers(-1, 40, 5000).astype(np.int32)
    np.testing.assert_array_equal(_any_of(column, codes), np.isin(column, codes))


def test_snapshot_rows_are_index_rows_only_when_they_are_the_same_ids(versions):
    from search.snapshot import Snapshot

    index, ids = versions["flat"], versions["ids"]
    same = Snapshot({"rows": ids.copy()}, {"rows": len(ids)})
    shifted = Snapshot({"rows": ids + 1}, {"rows": len(ids)})
    shorter = Snapshot({"rows": ids[:-1]}, {"rows": len(ids) - 1})
    assert same.aligned_with(index)
    assert not shifted.aligned_with(index)
    assert not shorter.aligned_with(index)


def test_prefault_maps_a_small_file_and_leaves_a_large_one(tmp_path, monkeypatch, settings):
    import sys

    from search import residency
    from search.residency import prefault

    np.save(tmp_path / "v.npy", clustered(300))
    mapped = np.load(tmp_path / "v.npy", mmap_mode="r")
    assert prefault(mapped) is (sys.platform == "linux")
    np.testing.assert_array_equal(mapped, clustered(300))
    assert prefault(np.asarray(mapped)) is False  # not a mapping
    monkeypatch.setattr(residency, "PREFAULT_SHARE", 0.0)
    assert prefault(mapped) is False  # too big beside the memory available
    settings.MEEPO_INDEX_PREFAULT = "on"
    assert prefault(mapped) is (sys.platform == "linux")  # mapped whatever its size
    settings.MEEPO_INDEX_PREFAULT = "off"
    monkeypatch.setattr(residency, "PREFAULT_SHARE", 1.0)
    assert prefault(mapped) is False  # never


def test_an_index_with_cached_sets_is_freed_without_the_cyclic_gc(tmp_path, settings):
    import gc
    import weakref

    settings.MEEPO_DATA_DIR = str(tmp_path)
    index = SearchIndex.load(publish_vectors(np.arange(50, dtype=np.int64), clustered(50)))
    index.search(clustered(1)[0], 5, allowed=rows_of(index, np.arange(10)))
    alive = weakref.ref(index)
    gc.disable()
    try:
        del index
        assert alive() is None  # a replaced version's maps and cache go with the last search
    finally:
        gc.enable()


def test_float16_vectors_are_ranked_exactly_too(tmp_path, settings):
    from search.index import VECTORS_FILE

    settings.MEEPO_DATA_DIR = str(tmp_path)
    vectors = clustered(300)
    ids = np.arange(300, dtype=np.int64) + 5
    path = publish_vectors(ids, vectors, model="f16")
    np.save(path / VECTORS_FILE, vectors.astype(np.float16))  # as an ANN version may store them
    index = SearchIndex.load(path)
    assert index.vectors.dtype == np.float16
    positions = np.arange(0, 300, 3)
    q = clustered(1, seed=4)[0]
    scores, got = index.rank_exact(q, rows_of(index, positions), 10)
    half = index.vectors[positions].astype(np.float32) @ q
    order = np.argsort(-half, kind="stable")[:10]
    np.testing.assert_array_equal(got, ids[positions][order])
    np.testing.assert_allclose(scores, half[order], rtol=1e-5)
