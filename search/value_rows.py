"""Rows by value of a snapshot column, so a filter on a few stores, brands, categories or labels
reads the rows holding those values instead of testing every row.

At 1 M rows, a brand's allowed rows from a whole-column mask cost ~0.8 ms a new filter (the
active flag copied, one `==` per value, `flatnonzero`); from `ValueRows` its ~5 k rows are a
table look-up and a slice, and the other conditions are tested on those rows only. Built on
first use per column and snapshot (one stable sort: ~7-20 ms for 1 M codes that fit 16 bits),
4 bytes a row each. Read-only once built; two threads building one at once build the same.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

# The chosen values' rows are used when they are at most this share of the rows; past it a
# whole-column mask is as quick and the gathers of the other columns would cost more.
NARROW_SHARE = 0.125


class ValueRows:
    """A column's row numbers ordered by value (stable: each value's rows stay ascending), and
    where each value's rows start: a table by value when values fit 16 bits (codes, store ids:
    a few KB), else the sorted values, binary-searched."""

    def __init__(self, column: np.ndarray) -> None:
        values = np.asarray(column)
        self.low = int(values.min()) if len(values) else 0
        small = len(values) and self.low >= -(2**15) and int(values.max()) < 2**15
        # numpy radix-sorts 16-bit integers: 3x quicker than int32's stable sort.
        keys = values.astype(np.int16) if small else values
        order = np.argsort(keys, kind="stable")
        self.order = order.astype(np.int32) if len(values) < 2**31 else order
        self.sorted, self.starts = None, None
        if small:
            counts = np.bincount(keys.astype(np.int64) - self.low)
            self.starts = np.concatenate([[0], np.cumsum(counts)])
        else:
            self.sorted = keys[order]

    def count(self, values: list[int]) -> int:
        lo, hi = self._bounds(values)
        return int((hi - lo).sum())

    def rows(self, values: list[int]) -> NDArray[np.int64]:
        """Sorted rows holding any of `values`."""
        lo, hi = self._bounds(values)
        parts = [self.order[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]
        rows = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        if len(parts) > 1:
            rows.sort()
        return rows

    def _bounds(self, values: list[int]):
        wanted = np.unique(np.asarray(values, dtype=np.int64))
        if self.starts is None:
            return np.searchsorted(self.sorted, wanted, "left"), np.searchsorted(self.sorted, wanted, "right")  # fmt: skip
        at = wanted - self.low
        at = at[(at >= 0) & (at < len(self.starts) - 1)]  # a value no row holds
        return self.starts[at], self.starts[at + 1]


def narrowest(snap, filters, cache: dict) -> NDArray[np.int64] | None:
    """Sorted rows holding the chosen values of `filters`' most selective condition (a superset
    of the rows passing them all), or None when no condition is chosen or none is narrow
    (NARROW_SHARE). `cache`: the snapshot's ValueRows by column."""
    best = None
    for name, values in snap.chosen_values(filters):
        if name not in cache:
            cache[name] = ValueRows(snap.cols[name])
        count = cache[name].count(values)
        if best is None or count < best[0]:
            best = (count, name, values)
    if best is None or best[0] > NARROW_SHARE * len(snap):
        return None
    return cache[best[1]].rows(best[2])


def any_of(column: np.ndarray, codes: list[int]) -> NDArray[np.bool_]:
    """column ∈ codes. A few codes are compared one by one: over 1 M rows each `==` costs
    ~0.4 ms where np.isin costs ~2.5 ms whatever the count."""
    if len(codes) > 8:
        return np.isin(column, codes)
    out = np.zeros(len(column), bool)
    for code in codes:
        out |= column == code
    return out
