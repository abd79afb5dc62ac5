"""The exact scan of a filter's rows: inner products of one query with the allowed rows of an
index version's vectors.npy, in row order (`subset_scores`), what `SearchIndex.rank_rows` ranks.

A few thousand rows spread over a 2 GB mapping are read one after another, each a page-table
walk and a cache miss before the row streams in: at 1 M, 5 k random rows cost ~0.45 us each,
four times what 5 k consecutive rows cost (measured: see `PREFETCH_ROWS`). So the rows are scanned
in blocks, and each block's first floats are gathered first: those loads do not depend on each
other, so the CPU has the block's page walks and first lines in flight at once, and the scan
then finds them in the TLB and the cache. Same kernel, same rows, same scores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from search.allowed_rows import AllowedRows

# Rows per block: what the TLB and L2 keep between the touch and the scan. Measured at 1 M
# (512-d float32, 5 k random rows, one thread): no touch 2.25 ms; blocks of 128 / 256 / 512
# rows 1.55 / 1.50 / 1.55 ms; touching more of each row (2, 4, 8 lines) was slower.
PREFETCH_ROWS = 256


def subset_scores(q: NDArray[np.float32], vectors, allowed: AllowedRows) -> NDArray[np.float32]:
    """Inner products of `q` with the allowed rows of `vectors`, in row order. On float32 rows
    faiss reads them where they are mapped (fvec_inner_products_by_idx: the same per-row SIMD
    dot as faiss.knn, so the same scores), 2-3x faster than gathering them first and without a
    copy of the subset (a 10-80 MB allocation per new filter). Other dtypes are gathered once
    (cached on the set) and scanned by faiss.knn's kernel. Never numpy's matmul: OpenBLAS would
    wake its thread pool and stall for milliseconds on a busy 2-core box."""
    import faiss

    out = np.empty(allowed.count, dtype=np.float32)
    if vectors.dtype == np.float32 and vectors.flags.c_contiguous and vectors.ndim == 2:
        rows = np.ascontiguousarray(allowed.positions, dtype=np.int64)
        first = np.asarray(vectors)[:, 0]  # a strided view: one float per row
        for start in range(0, len(rows), PREFETCH_ROWS):
            block = rows[start : start + PREFETCH_ROWS]
            first[block]  # the touch (see the module docstring); its values are unused
            faiss.fvec_inner_products_by_idx(
                faiss.swig_ptr(out[start:]), faiss.swig_ptr(q), faiss.swig_ptr(vectors),
                faiss.swig_ptr(block), len(q), 1, len(block),
            )  # fmt: skip
        return out
    subset = allowed.vectors
    faiss.fvec_inner_products_ny(
        faiss.swig_ptr(out), faiss.swig_ptr(q), faiss.swig_ptr(subset), len(q), len(subset)
    )
    return out
