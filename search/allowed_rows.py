"""A filter's rows in one published index version (`AllowedRows`), and what each filtered search
path derives from them once: ids, faiss selector bitmaps, the gathered vectors of a small set.

Built by `SearchIndex.allowed_rows` (from the columnar snapshot's rows, cached per version) or
`SearchIndex.allowed_for_ids` (from ids the database listed). Immutable once built, so threads
share them; a derived array computed twice by two threads at once is computed the same.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from search.index import SearchIndex


class _once:
    """functools.cached_property without its lock: in Python 3.11 that lock is one per
    attribute across all instances, so two worker threads gathering two different sets would
    wait for each other. Two threads computing one value at once compute the same value."""

    def __init__(self, fn) -> None:
        self.fn, self.name = fn, fn.__name__
        self.__doc__ = fn.__doc__

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


class AllowedRows:
    """A filter's rows in one index version: sorted positions in ids.npy, or (for a large set of
    dense ids) a mask over the id space. What each search path needs is derived once, on first
    use, and kept: the ids, the selector bitmaps, the gathered vectors of a small set."""

    def __init__(self, index: SearchIndex, *, positions=None, id_mask=None) -> None:
        # A proxy: the index keeps its sets in its own LRU, and a reference cycle would keep an
        # index replaced by a newer version (its maps, its cache) until the cyclic GC runs.
        self.index = weakref.proxy(index)
        self.mask, self._positions = id_mask, positions
        self.count = int(np.count_nonzero(id_mask)) if id_mask is not None else len(positions)

    @property
    def nbytes(self) -> int:
        """An upper bound of what it holds once every derived array is built."""
        from search import index as index_module  # its threshold, as tests may set it

        dense = (int(self.index.ids[-1]) + 1) if self.index.ntotal else 0
        size = 16 * self.count + dense // 8 + self.index.ntotal // 8 + 1024
        if self.count <= index_module.EXACT_SUBSET_MAX and self.index.vectors.dtype != np.float32:
            size += 4 * self.count * self.index.dim  # gathered (float32 rows are read in place)
        return size

    @_once
    def positions(self) -> NDArray[np.int64]:
        """Sorted rows of ids.npy (ids are sorted, so the lookup keeps the order)."""
        if self._positions is not None:
            return self._positions
        return self.index._lookup[np.flatnonzero(self.mask)].astype(np.int64)

    @_once
    def ids(self) -> NDArray[np.int64]:
        return np.asarray(self.index.ids[self.positions], dtype=np.int64)

    @_once
    def vectors(self) -> NDArray[np.float32]:
        """The rows' vectors, gathered once as contiguous fp32 (the exact scan's input when
        vectors.npy is not float32)."""
        return np.ascontiguousarray(self.index.vectors[self.positions], dtype=np.float32)

    def contains(self, ids: NDArray[np.int64]) -> NDArray[np.bool_]:
        if self.mask is not None:
            return self.mask[ids]
        return np.isin(ids, self.ids)

    @_once
    def id_bitmap(self) -> NDArray[np.uint8]:
        """IDSelectorBitmap over ProductImage ids (the ANN's labels)."""
        if self.mask is not None:
            return np.packbits(self.mask, bitorder="little")
        return bitmap(self.ids, int(self.index.ids[-1]) + 1)

    @_once
    def row_bitmap(self) -> NDArray[np.uint8]:
        """IDSelectorBitmap over rows (the flat index's own labels)."""
        return bitmap(self.positions, self.index.ntotal)


def members(sorted_ids: NDArray[np.int64], wanted: NDArray[np.int64]) -> NDArray[np.int64]:
    """Sorted, unique positions in `sorted_ids` of the values in `wanted` that are present."""
    pos = np.searchsorted(sorted_ids, wanted)
    pos[pos == len(sorted_ids)] = 0
    hit = np.zeros(len(sorted_ids), dtype=bool)
    hit[pos[sorted_ids[pos] == wanted]] = True
    return np.flatnonzero(hit)


def bitmap(rows: NDArray[np.int64], size: int) -> NDArray[np.uint8]:
    """faiss IDSelectorBitmap layout: bit (i & 7) of byte (i >> 3) is set for each member i."""
    mask = np.zeros(size, dtype=bool)
    mask[rows] = True
    return np.packbits(mask, bitorder="little")
