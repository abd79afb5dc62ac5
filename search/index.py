"""The published faiss index, as the site reads it: load, hot-reload, search (filtered or not).

On disk (written only by `pipeline.indexing`), one directory per version under
MEEPO_DATA_DIR/index/<UTC stamp>/:
  index.faiss    faiss index over inner product; its labels are ProductImage ids
  ids.npy        int64 ProductImage ids, sorted
  vectors.npy    (n, dim) unit vectors aligned with ids.npy, float32 (float16 allowed for an ANN
                 version: manifest `vectors_dtype`) for exact subset scans and the next build
  manifest.json  model, dim, count, index type and parameters, measured recall and latency, ...
and `index/current`, a symlink to the published version, swapped atomically with os.replace.

Guarantees: files are memory-mapped read-only, so all web workers share one copy in the page cache.
A worker checks `index/current` at most every MEEPO_INDEX_RELOAD_SECONDS, loads a new version beside
the old one and swaps the reference; searches already running keep the object they started with.
Filtered searches never post-filter: small allowed sets are scanned exactly, larger ones are
searched with an IDSelector inside the ANN with a wider probe. A filter's allowed rows
(`AllowedRows`: positions, selector bitmaps, the gathered vectors of a small set) are built once
and kept in a small per-version LRU (`allowed_rows`), so query vectors, pages and refined
queries under the same filter reuse them.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cachetools
import numpy as np
from django.conf import settings
from numpy.typing import NDArray

from search import residency
from search.allowed_rows import AllowedRows, members
from search.exceptions import IndexNotReady
from search.manifest import MANIFEST_FILE, Manifest, read_manifest
from search.relevance import NoiseProfile
from search.subset_scan import subset_scores

logger = logging.getLogger(__name__)

INDEX_FILE = "index.faiss"
IDS_FILE = "ids.npy"
VECTORS_FILE = "vectors.npy"
CURRENT_LINK = "current"
# With an ANN index, an allowed set this small is scanned exactly from vectors.npy, in place
# (search.subset_scan). Measured at 1 M (IVF4096,SQ8, k = 240, one thread): the blocked scan
# costs ~0.2-0.3 us a random row (1.0-1.5 ms for 5 k rows, 5.4 ms for 20 k), the ANN with a
# selector ~1 ms whatever the set, at recall@240 0.31 (5 k), 0.45 (10 k), 0.60 (20 k), 0.90
# (50 k): up to 20 k rows exactness is worth its cost. A flat index is always searched exactly.
EXACT_SUBSET_MAX = 20_000
# Filtered ANN widens its probe by 1/sqrt(selectivity), capped: fewer allowed items per list
# means more lists to visit to find k of them. At 1 M it keeps recall@10 (vs the exact filtered
# scan, 120 near-catalogue queries) at or above the unfiltered 0.977: store (5 %) 0.988, category
# (12 %) 0.985, two categories 0.986, in stock 0.983, 5 brands (2.5 %) 0.992.
FILTER_WIDEN_MAX = 8
# Allowed-row sets kept per index version and process, by their bytes (positions, bitmaps and the
# gathered fp32 rows of an exact-sized set: ~10 MB for 5 k rows of 512-d): a few recent filters.
ALLOWED_CACHE_BYTES = 64 * 2**20


def index_root() -> Path:
    return _index_root(str(settings.MEEPO_DATA_DIR))


@functools.lru_cache(maxsize=8)
def _index_root(data_dir: str) -> Path:
    # One Path per data directory: every search asks several times, and building a Path (and
    # hashing it for the holder's lookup) cost more than the rest of `get_index`.
    return Path(data_dir) / "index"


def published_dir(root: Path | None = None) -> Path | None:
    """The directory `index/current` points at, or None when nothing is published."""
    link = (root or index_root()) / CURRENT_LINK
    try:
        target = link.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        return None
    return target if (target / MANIFEST_FILE).is_file() else None


@dataclass
class SearchIndex:
    path: Path
    manifest: Manifest
    index: Any = field(repr=False)
    ids: NDArray[np.int64] = field(repr=False)
    vectors: NDArray[np.floating] = field(repr=False)  # float32, or float16 (ANN versions)
    _allowed_cache: cachetools.LRUCache = field(
        default_factory=lambda: cachetools.LRUCache(ALLOWED_CACHE_BYTES, getsizeof=_size_of),
        init=False,
        repr=False,
    )
    _allowed_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def version(self) -> str:
        return self.path.name

    @property
    def ntotal(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.manifest.dim)

    @functools.cached_property
    def noise(self) -> NoiseProfile | None:
        """Random text queries' best scores on this version: the relevance floor's calibration."""
        return NoiseProfile.from_manifest(self.manifest.to_dict())

    @classmethod
    def load(cls, path: Path) -> SearchIndex:
        """Open one version directory, memory-mapped and read-only."""
        import faiss

        manifest = read_manifest(path)
        flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY
        index = faiss.read_index(str(path / INDEX_FILE), flags)
        ids = np.asarray(np.load(path / IDS_FILE, mmap_mode="r"))  # a plain view: cheaper gathers
        vectors = np.load(path / VECTORS_FILE, mmap_mode="r")
        if manifest.index_type != "flat" and settings.MEEPO_FAISS_THREADS > 1:
            # With spare threads, split one query's inverted lists over them (faiss parallel_mode 1).
            faiss.extract_index_ivf(index).parallel_mode = 1
        if index.ntotal != len(ids) or vectors.shape != (len(ids), manifest.dim):
            raise IndexNotReady(f"index version {path.name} is inconsistent; rebuild it")
        if manifest.index_type != "flat":
            residency.prefault(vectors)
        return cls(path=path, manifest=manifest, index=index, ids=ids, vectors=vectors)

    def search(
        self,
        query: NDArray[np.float32],
        k: int,
        *,
        allowed_ids: NDArray[np.int64] | None = None,
        allowed: AllowedRows | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Best k (cosine scores, ProductImage ids), best first, no padding (-1) entries.

        A filter is given as ids (`allowed_ids`, unknown ones ignored) or as this version's
        rows (`allowed`, from `allowed_rows`: nothing to look up, reusable)."""
        _set_threads()
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        k = max(0, min(int(k), self.ntotal))
        if k == 0:
            return _empty()
        if allowed_ids is None and allowed is None:
            scores, labels = self.index.search(q, k, params=self._params(1.0))
            return _strip(scores[0], labels[0])
        if allowed is None:
            allowed = self.allowed_for_ids(allowed_ids)
        if allowed.count == 0:
            return _empty()
        if self.manifest.index_type == "flat":
            return self._filtered_flat(q, allowed, k)
        if allowed.count <= EXACT_SUBSET_MAX:
            return self.rank_exact(q, allowed, k)
        return self._filtered_ann(q, allowed, k)

    def rank_exact(
        self, query: NDArray[np.float32], allowed: AllowedRows, k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """The exact best k of `allowed` (k = allowed.count ranks them all) as (scores, ids),
        best first; equal scores in id order, so the order never depends on which other rows
        were scanned."""
        scores, rows = self.rank_rows(query, allowed, k)
        return scores, np.asarray(self.ids[rows], dtype=np.int64)

    def rank_rows(
        self, query: NDArray[np.float32], allowed: AllowedRows, k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """`rank_exact` as (scores, rows of ids.npy)."""
        _set_threads()
        k = min(int(k), allowed.count)
        if k <= 0:
            return _empty()
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        scores = subset_scores(q, self.vectors, allowed)
        rows = allowed.positions
        if k < len(scores):
            # Everything scoring at least the k-th best, so equal scores at the cut are all
            # there for the id-order tie break below.
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            keep = np.flatnonzero(scores >= kth)
            scores, rows = scores[keep], rows[keep]
        order = np.lexsort((rows, -scores))[:k]  # rows are sorted: row order is id order
        return scores[order], rows[order]

    def allowed_rows(self, key, build) -> AllowedRows:
        """The rows `build()` returns (sorted positions in ids.npy), kept under `key` in this
        version's LRU: a repeated filter costs a dict lookup."""
        with self._allowed_lock:
            found = self._allowed_cache.get(key)
        if found is not None:
            return found
        rows = AllowedRows(self, positions=np.asarray(build(), dtype=np.int64))
        if rows.nbytes <= ALLOWED_CACHE_BYTES:
            with self._allowed_lock:
                self._allowed_cache[key] = rows
        return rows

    def allowed_for_ids(self, allowed_ids: NDArray[np.int64]) -> AllowedRows:
        """The allowed ids that are in this index (unknown ids and duplicates are ignored)."""
        allowed = np.asarray(allowed_ids, dtype=np.int64).ravel()
        if self._lookup is None:
            return AllowedRows(self, positions=members(self.ids, np.sort(allowed)))
        if len(allowed) <= 4 * EXACT_SUBSET_MAX:  # small: O(allowed), not O(id space)
            allowed = allowed[(allowed >= 0) & (allowed < len(self._lookup))]
            pos = self._lookup[allowed]
            return AllowedRows(self, positions=np.unique(pos[pos >= 0]).astype(np.int64))
        # A boolean mask over the id space: O(allowed) scatter, no sort, ~1 ms for 500 k ids.
        mask = np.zeros(len(self._lookup), dtype=bool)
        mask[allowed[(allowed >= 0) & (allowed < len(mask))]] = True
        mask &= self._lookup >= 0
        return AllowedRows(self, id_mask=mask)

    @functools.cached_property
    def _lookup(self) -> NDArray[np.int32] | None:
        """id -> row table (4 bytes per id up to the largest): 50x faster than a binary search.

        None when ids are too sparse for it to pay (then binary search).
        """
        if not self.ntotal or int(self.ids[-1]) + 1 > 8 * self.ntotal + 1024:
            return None
        table = np.full(int(self.ids[-1]) + 1, -1, dtype=np.int32)
        table[self.ids] = np.arange(self.ntotal, dtype=np.int32)
        return table

    def _filtered_flat(self, q, allowed: AllowedRows, k: int):
        """Exact: the flat index's rows are in ids.npy order, so selectors work on positions."""
        import faiss

        flat = faiss.downcast_index(self.index.index)  # IDMap2's inner IndexFlatIP
        positions = allowed.positions
        if allowed.count * 8 < self.ntotal:
            # IDSelectorArray makes IndexFlat scan only those rows (~0.25 µs each).
            selector = faiss.IDSelectorArray(positions)
        else:
            found = self._exact_prefix(q, allowed, k)
            if found is not None:
                return found
            bitmap = allowed.row_bitmap
            selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
        scores, labels = flat.search(q, k, params=faiss.SearchParameters(sel=selector))
        scores, labels = _strip(scores[0], labels[0])
        return scores, self.ids[labels].astype(np.int64)

    def _exact_prefix(self, q, allowed: AllowedRows, k: int):
        """Large allowed sets on a flat index: the exact ranking's first k/selectivity*4 rows.

        Exact search ranks every vector, so if that prefix holds k allowed rows they are exactly
        the best k allowed (nothing is lost, unlike filtering an ANN's top k); the flat scan's
        fast path is ~3x quicker than a scan that tests a selector on every row. None when the
        prefix holds fewer than k (rare): the caller then scans with a selector.
        """
        depth = min(self.ntotal, math.ceil(4 * k * self.ntotal / allowed.count) + 10)
        scores, labels = self.index.search(q, depth)
        scores, labels = _strip(scores[0], labels[0])
        keep = allowed.contains(labels)
        if keep.sum() < min(k, allowed.count):
            return None
        return scores[keep][:k], labels[keep][:k]

    def _filtered_ann(self, q, allowed: AllowedRows, k: int):
        import faiss

        bitmap = allowed.id_bitmap
        selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
        widen = min(FILTER_WIDEN_MAX, 1 / math.sqrt(allowed.count / self.ntotal))
        scores, labels = self.index.search(q, k, params=self._params(widen, selector))
        del bitmap  # kept alive until here: the selector points into it
        return _strip(scores[0], labels[0])

    def _params(self, widen: float, selector=None):
        import faiss

        params = self.manifest.params
        if "nprobe" in params:
            nlist = int(params.get("nlist", params["nprobe"]))
            nprobe = min(nlist, math.ceil(params["nprobe"] * widen))
            return faiss.SearchParametersIVF(nprobe=nprobe, sel=selector)
        if selector is not None:
            return faiss.SearchParameters(sel=selector)
        return None


def _size_of(rows: AllowedRows) -> int:
    return rows.nbytes


def _set_threads() -> None:
    import faiss

    faiss.omp_set_num_threads(max(1, settings.MEEPO_FAISS_THREADS))  # thread-local in faiss


def _empty():
    return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)


def _strip(scores, labels):
    keep = labels >= 0
    return scores[keep].astype(np.float32), labels[keep].astype(np.int64)


class _Holder:
    """Per-process current index for one data directory; reloads when index/current moves."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.current: SearchIndex | None = None
        self.checked_at = -math.inf
        self.lock = threading.Lock()

    def get(self) -> SearchIndex | None:
        interval = settings.MEEPO_INDEX_RELOAD_SECONDS
        if time.monotonic() - self.checked_at >= interval:
            with self.lock:  # one thread loads; the others keep serving the old object
                if time.monotonic() - self.checked_at >= interval:
                    self._refresh()
                    self.checked_at = time.monotonic()
        return self.current

    def _refresh(self) -> None:
        target = published_dir(self.root)
        if target is None or (self.current is not None and self.current.path == target):
            return
        try:
            loaded = SearchIndex.load(target)
        except Exception:
            # A broken new version must not take the site down; the old one keeps serving.
            logger.exception("could not load index version %s; keeping the previous one", target)
            return
        logger.info("loaded index version %s (%d vectors)", target.name, loaded.ntotal)
        self.current = loaded


_holders: dict[Path, _Holder] = {}
_holders_lock = threading.Lock()


def get_index() -> SearchIndex:
    """This process's published index (hot-reloaded); IndexNotReady when none fits the model."""
    root = index_root()
    with _holders_lock:
        holder = _holders.get(root) or _holders.setdefault(root, _Holder(root))
    index = holder.get()
    if index is None:
        raise IndexNotReady("No search index is published yet; run `manage.py pipeline`.")
    if index.manifest.model != settings.MEEPO_CLIP_MODEL:
        raise IndexNotReady(
            f"The published index was built for {index.manifest.model!r}, not "
            f"{settings.MEEPO_CLIP_MODEL!r}; run `manage.py embed` and `manage.py build_index`."
        )
    return index


def reset_index_cache() -> None:
    """Forget loaded indexes (tests; a worker never needs it)."""
    with _holders_lock:
        _holders.clear()
