"""The exact subset scan in blocks (search.subset_scan) gives the scores one whole-set call of
the same faiss kernel gives, bit for bit, whatever the block boundaries."""

import numpy as np
import pytest

from search.subset_scan import PREFETCH_ROWS, subset_scores
from tests.search.test_index import clustered


class Rows:
    def __init__(self, positions, vectors):
        self.positions, self.count = positions, len(positions)
        self.vectors = np.ascontiguousarray(vectors[positions], dtype=np.float32)


def whole_call(q, vectors, positions):
    import faiss

    out = np.empty(len(positions), dtype=np.float32)
    rows = np.ascontiguousarray(positions, dtype=np.int64)
    faiss.fvec_inner_products_by_idx(
        faiss.swig_ptr(out), faiss.swig_ptr(q), faiss.swig_ptr(vectors),
        faiss.swig_ptr(rows), len(q), 1, len(rows),
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    path = tmp_path_factory.mktemp("scan") / "vectors.npy"
    np.save(path, clustered(3000))
    return np.load(path, mmap_mode="r")


@pytest.mark.parametrize("size", [0, 1, PREFETCH_ROWS - 1, PREFETCH_ROWS, PREFETCH_ROWS + 1, 2999])
def test_blocks_score_what_one_call_scores(mapped, size):
    positions = np.sort(np.random.default_rng(size).choice(3000, size, replace=False))
    q = clustered(1, seed=8)[0]
    got = subset_scores(q, mapped, Rows(positions, mapped))
    np.testing.assert_array_equal(got, whole_call(q, mapped, positions))
    np.testing.assert_allclose(got, np.asarray(mapped)[positions] @ q, rtol=1e-5, atol=1e-6)


def test_other_dtypes_scan_the_gathered_rows(mapped):
    half = np.asarray(mapped).astype(np.float16)
    positions = np.arange(0, 3000, 5)
    q = clustered(1, seed=3)[0]
    got = subset_scores(q, half, Rows(positions, half))
    np.testing.assert_allclose(got, half[positions].astype(np.float32) @ q, rtol=1e-5, atol=1e-6)
