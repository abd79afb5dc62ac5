"""The IVF-Flat tier between exact search and IVF-SQ8: planned by size and budget, tuned to its own
recall target, served through search.index unchanged (nprobe from the
manifest, exact scores from float32 lists), updated incrementally and synced to another node."""

import numpy as np
import pytest

from bench.planted_index import publish_arrays
from pipeline.index_sync import sync_index
from pipeline.indexing import build_index, faiss_build
from search import index as index_module
from search.index import SearchIndex, get_index, published_dir
from search.manifest import read_manifest
from tests.pipeline.test_indexing import MODEL, add_images
from tests.search.test_sync_index import nodes, server, tree  # noqa: F401 (fixtures)

DIM = 32


def clustered(n, *, seed=0, dim=DIM, clusters=40):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)) + 1.5
    x = centres[rng.integers(0, clusters, n)] + rng.normal(scale=0.7, size=(n, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize(
    ("n", "ivf_flat_max", "memory_mb", "kind"),
    [
        (20_000, 300_000, 600, "flat"),
        (20_001, 300_000, 600, "ivf_flat"),
        (280_000, 300_000, 600, "ivf_flat"),
        (300_000, 300_000, 600, "ivf_flat"),
        (310_000, 400_000, 600, "ivf_sq8"),  # float32 lists no longer fit 600 MiB
        (300_001, 300_000, 700, "ivf_sq8"),
        (50_000, 0, 600, "ivf_sq8"),  # the tier switched off
    ],
)
def test_plan_puts_ivf_flat_between_exact_and_sq8(n, ivf_flat_max, memory_mb, kind):
    plan = faiss_build.plan_index(
        n, 512, memory_mb=memory_mb, exact_max=20_000, ivf_flat_max=ivf_flat_max
    )
    assert plan.index_type == kind
    if kind == "ivf_flat":
        assert plan.factory == f"IVF{plan.nlist},Flat"
        assert plan.estimated_bytes <= memory_mb * 2**20


@pytest.mark.django_db
def test_ivf_flat_version_serves_exact_scores_through_search_index(settings):
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0
    settings.MEEPO_FAISS_THREADS = 2  # load sets parallel_mode on the IVF: must work on this kind
    ids = np.arange(1, 3001, dtype=np.int64) * 7
    planted = clustered(3050)  # catalogue and queries from the same clusters
    vectors, queries = planted[:3000], planted[3000:]
    path, built, _ = publish_arrays(ids, vectors, model="m", exact_max=100, ivf_flat_max=10_000)
    manifest = read_manifest(path)
    assert (manifest.index_type, manifest.factory) == ("ivf_flat", f"IVF{built.plan.nlist},Flat")
    assert manifest.target_recall == settings.MEEPO_INDEX_IVF_FLAT_RECALL == 0.99
    assert manifest.recall_at_10 >= 0.99
    assert manifest.recall_at_10_between >= 0.94  # the between-cluster mixes' usual 0.05 slack
    assert 1 <= manifest.params["nprobe"] < manifest.params["nlist"]

    index = SearchIndex.load(path)  # as a web worker loads it: mmapped, read-only
    found = []
    for q in queries:
        scores, got = index.search(q, 10)
        # The scores of the returned ids are exact (float32 lists), bit for bit what an exact
        # scan of the same rows gives: ranking fusion sees the flat index's numbers.
        exact_scores, exact_ids = index.rank_exact(q, index.allowed_for_ids(got), len(got))
        assert dict(zip(got.tolist(), scores.tolist(), strict=True)) == dict(
            zip(exact_ids.tolist(), exact_scores.tolist(), strict=True)
        )
        exact = ids[np.argsort(-(vectors @ q))[:10]]
        found.append(len(set(got) & set(exact)) / 10)
    assert np.mean(found) >= 0.98


@pytest.mark.django_db
def test_ivf_flat_filtered_search_through_the_selector(settings, monkeypatch):
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0
    monkeypatch.setattr(index_module, "EXACT_SUBSET_MAX", 10)  # force the ANN + selector path
    ids = np.arange(1, 2001, dtype=np.int64)
    planted = clustered(2001, seed=1)
    vectors, q = planted[:2000], planted[2000]
    path, _, _ = publish_arrays(ids, vectors, model="m", exact_max=100, ivf_flat_max=10_000)
    index = SearchIndex.load(path)
    allowed = ids[ids % 3 == 0]
    _scores, got = index.search(q, 5, allowed_ids=allowed)
    assert set(got) <= set(allowed)
    mask = np.isin(ids, allowed)
    best = ids[mask][np.argsort(-(vectors[mask] @ q))[:5]]
    assert len(set(got) & set(best)) >= 4


@pytest.mark.django_db
def test_ivf_flat_updates_incrementally_and_stays_ivf_flat(settings):
    settings.MEEPO_CLIP_MODEL = MODEL
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0
    settings.MEEPO_INDEX_EXACT_MAX = 100
    settings.MEEPO_INDEX_IVF_FLAT_MAX = 10_000
    images = add_images(300)
    first = build_index()
    assert (first.index_type, first.mode) == ("ivf_flat", "full")
    assert read_manifest(published_dir()).target_recall == 0.99
    add_images(20, seed=1)
    second = build_index()
    assert (second.index_type, second.mode, second.count) == ("ivf_flat", "incremental", 320)
    manifest = read_manifest(published_dir())
    assert manifest.recall_at_10 >= 0.99
    image, vector = images[17]
    assert int(get_index().search(vector, 1)[1][0]) == image.pk


@pytest.mark.django_db
def test_ivf_flat_version_syncs_and_answers_the_same(nodes, server):  # noqa: F811
    _, node, switch = nodes
    ids = np.arange(1, 1501, dtype=np.int64) * 3
    source, _, _ = publish_arrays(
        ids, clustered(1500, seed=2), model=MODEL, exact_max=100, ivf_flat_max=10_000
    )
    assert read_manifest(source).index_type == "ivf_flat"
    queries = clustered(5, seed=99)
    expected = [get_index().search(q, 5) for q in queries]

    switch(node)
    assert sync_index(server.url).status == "synced"

    assert tree(published_dir()) == tree(source)
    for q, (scores, got) in zip(queries, expected, strict=True):
        now_scores, now_ids = get_index().search(q, 5)
        assert now_ids.tolist() == got.tolist()
        assert np.array_equal(now_scores, scores)
