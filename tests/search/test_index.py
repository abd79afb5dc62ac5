"""search.index against exact search on planted vectors: plain, filtered, publish and hot reload."""

import numpy as np
import pytest

from pipeline.indexing import faiss_build, publish
from search import index as index_module
from search.exceptions import IndexNotReady
from search.index import IDS_FILE, VECTORS_FILE, SearchIndex, get_index
from search.manifest import Manifest

DIM = 32


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0


def clustered(n, *, seed=0, dim=DIM, clusters=50):
    """Unit vectors in clusters with a common mean direction, like CLIP image embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)) + 2.0
    x = centres[rng.integers(0, clusters, n)] + rng.normal(scale=0.6, size=(n, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def publish_vectors(ids, vectors, *, model="m", index_type="flat", target=0.95):
    plan = faiss_build.plan_index(
        len(ids),
        vectors.shape[1],
        memory_mb=1000,
        exact_max=len(ids) if index_type == "flat" else 0,
    )
    assert plan.index_type == index_type
    built = faiss_build.build_full(vectors, ids, plan, target_recall=target)
    stamp = publish.new_stamp()
    work = publish.start_version(stamp)
    np.save(work / IDS_FILE, ids)
    np.save(work / VECTORS_FILE, vectors)
    publish.write_index_file(built.index, work)
    manifest = Manifest(
        model=model,
        dim=vectors.shape[1],
        count=len(ids),
        index_type=plan.index_type,
        params=built.params,
        recall_at_10=built.recall_at_10,
    )
    publish.write_manifest(work, manifest)
    return publish.publish(work, stamp)


def exact(vectors, ids, q, k, allowed=None):
    mask = np.ones(len(ids), bool) if allowed is None else np.isin(ids, allowed)
    scores = vectors[mask] @ q
    order = np.argsort(-scores)[:k]
    return scores[order], ids[mask][order]


def recall(got, expected):
    return len(set(got.tolist()) & set(expected.tolist())) / len(expected)


def test_flat_index_returns_exact_results_with_scores(settings):
    vectors = clustered(2000)
    ids = np.arange(2000, dtype=np.int64) * 7 + 3  # ids are ProductImage pks, not positions
    index = SearchIndex.load(publish_vectors(ids, vectors))
    for q in clustered(20, seed=1):
        scores, got = index.search(q, 10)
        exp_scores, exp_ids = exact(vectors, ids, q, 10)
        np.testing.assert_array_equal(got, exp_ids)
        np.testing.assert_allclose(scores, exp_scores, rtol=1e-5)


def test_planted_vector_is_found_first_and_no_padding_when_k_exceeds_size():
    vectors = clustered(50)
    ids = np.arange(100, 150, dtype=np.int64)
    index = SearchIndex.load(publish_vectors(ids, vectors))
    scores, got = index.search(vectors[17], 500)
    assert got[0] == 117
    assert scores[0] == pytest.approx(1.0, abs=1e-5)
    assert len(got) == 50
    assert (got >= 0).all()


def test_ivf_index_meets_recall_target_against_exact_search():
    data = clustered(20_100)
    vectors, queries = data[:20_000], data[20_000:]  # held-out queries from the same catalogue
    ids = np.arange(20_000, dtype=np.int64)
    index = SearchIndex.load(publish_vectors(ids, vectors, index_type="ivf_sq8", target=0.95))
    assert index.manifest.params["nprobe"] < index.manifest.params["nlist"]
    recalls = [recall(index.search(q, 10)[1], exact(vectors, ids, q, 10)[1]) for q in queries]
    assert np.mean(recalls) >= 0.9


@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.01, 0.001])
def test_filtered_search_returns_best_k_among_allowed_ids(fraction, monkeypatch):
    # A low exact-scan threshold sends the larger subsets through the ANN with a selector.
    monkeypatch.setattr(index_module, "EXACT_SUBSET_MAX", 500)
    vectors = clustered(20_000)
    ids = np.arange(20_000, dtype=np.int64) * 2
    index = SearchIndex.load(publish_vectors(ids, vectors, index_type="ivf_sq8"))
    rng = np.random.default_rng(3)
    allowed = rng.choice(ids, size=max(1, int(len(ids) * fraction)), replace=False)
    allowed = np.concatenate([allowed, [10**9 + 1]])  # unknown ids are ignored
    recalls = []
    for q in clustered(20_030)[20_000:]:
        _, got = index.search(q, 10, allowed_ids=allowed)
        _, expected = exact(vectors, ids, q, 10, allowed)
        assert np.isin(got, allowed).all()
        assert len(got) == min(10, len(allowed) - 1)  # never post-filtered down to fewer
        recalls.append(recall(got, expected))
    assert np.mean(recalls) >= 0.9


def test_filter_with_no_known_ids_returns_nothing():
    vectors = clustered(100)
    index = SearchIndex.load(publish_vectors(np.arange(100, dtype=np.int64), vectors))
    scores, got = index.search(vectors[0], 10, allowed_ids=np.array([5000], dtype=np.int64))
    assert len(got) == 0
    assert len(scores) == 0


def test_get_index_raises_when_nothing_is_published():
    with pytest.raises(IndexNotReady, match="pipeline"):
        get_index()


def test_get_index_refuses_an_index_built_for_another_model(settings):
    settings.MEEPO_CLIP_MODEL = "model-b"
    publish_vectors(np.arange(10, dtype=np.int64), clustered(10), model="model-a")
    with pytest.raises(IndexNotReady, match="model-a"):
        get_index()


def test_hot_reload_swaps_to_new_version_and_old_object_keeps_working(settings):
    settings.MEEPO_CLIP_MODEL = "m"
    v1 = clustered(100, seed=1)
    publish_vectors(np.arange(100, dtype=np.int64), v1)
    first = get_index()
    v2 = clustered(200, seed=2)
    publish_vectors(np.arange(1000, 1200, dtype=np.int64), v2)
    second = get_index()
    assert second.version != first.version
    assert second.ntotal == 200
    # A search that started on the old object finishes on it, even after the swap.
    assert first.search(v1[3], 1)[1][0] == 3
    assert second.search(v2[3], 1)[1][0] == 1003


def test_reload_is_checked_at_most_every_interval(settings):
    settings.MEEPO_CLIP_MODEL = "m"
    publish_vectors(np.arange(10, dtype=np.int64), clustered(10))
    first = get_index()
    settings.MEEPO_INDEX_RELOAD_SECONDS = 3600
    publish_vectors(np.arange(20, dtype=np.int64), clustered(20))
    assert get_index() is first


def test_broken_new_version_keeps_the_old_one_serving(settings):
    settings.MEEPO_CLIP_MODEL = "m"
    publish_vectors(np.arange(10, dtype=np.int64), clustered(10))
    first = get_index()
    broken = publish_vectors(np.arange(20, dtype=np.int64), clustered(20))
    (broken / "index.faiss").write_bytes(b"garbage")
    assert get_index() is first


@pytest.mark.parametrize("fraction", [0.9, 0.5, 0.1, 0.01])
@pytest.mark.parametrize("prefix", [True, False])
def test_filtered_flat_search_is_exact(fraction, prefix, monkeypatch):
    # Allowed sets above 4 * EXACT_SUBSET_MAX are handled as a mask over the id space.
    monkeypatch.setattr(index_module, "EXACT_SUBSET_MAX", 100)
    if not prefix:  # the selector scan behind the exact-prefix shortcut
        monkeypatch.setattr(SearchIndex, "_exact_prefix", lambda *a: None)
    vectors = clustered(3000)
    ids = np.arange(3000, dtype=np.int64) * 5 + 1
    index = SearchIndex.load(publish_vectors(ids, vectors))
    allowed = np.random.default_rng(4).choice(ids, size=int(3000 * fraction), replace=False)
    for q in clustered(10, seed=8):
        scores, got = index.search(q, 10, allowed_ids=allowed)
        exp_scores, expected = exact(vectors, ids, q, 10, allowed)
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_allclose(scores, exp_scores, rtol=1e-5)


def test_filtered_search_with_sparse_ids_uses_binary_search():
    vectors = clustered(500)
    ids = np.arange(500, dtype=np.int64) * 1000 + 7  # too sparse for the id -> row table
    index = SearchIndex.load(publish_vectors(ids, vectors))
    assert index._lookup is None
    allowed = np.array([ids[3], ids[3], ids[400], 99, -5], dtype=np.int64)
    _, got = index.search(vectors[3], 10, allowed_ids=allowed)
    assert got.tolist() == [ids[3], ids[400]]


def test_searches_never_fail_while_versions_are_published_and_pruned(settings):
    import threading

    settings.MEEPO_CLIP_MODEL = "m"
    settings.MEEPO_INDEX_KEEP = 1
    publish_vectors(np.arange(50, dtype=np.int64), clustered(50, seed=0))
    errors, seen, stop = [], set(), threading.Event()
    query = clustered(1, seed=99)[0]

    def worker():
        while not stop.is_set():
            try:
                index = get_index()
                _, got = index.search(query, 5)
                assert len(got) == 5
                seen.add(index.version)
            except Exception as exc:  # any failure is a failed request
                errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        for seed in range(1, 6):
            last = publish_vectors(np.arange(50, dtype=np.int64), clustered(50, seed=seed))
            publish.prune(settings.MEEPO_INDEX_KEEP)  # deletes files a worker may still map
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert seen, "the searching thread never completed a search"
    # And the holder has moved on to the last published version (not stuck on an old one).
    assert get_index().version == last.name
