"""Rows by value of a snapshot column, so a filter on a few stores, brands, categories or labels
reads the rows holding those values instead of testing every row.

At 1 M rows, a brand's allowed rows from a whole-column mask cost ~0.8 ms a new filter (the
active flag copied, one `==` per value, `flatnonzero`); from `ValueRows` its ~5 k rows are a
table look-up and a slice, and the other conditions are tested on those rows only.

Written once with the snapshot (search.snapshot_write: `<snapshot>/value_rows/`, see `load`)
and memory-mapped by every worker, so the orders are shared page cache, not 4 bytes a row of
each worker's own memory; a snapshot written before them (or whose files do not match its
columns) has each worker build a column's on first use (one stable sort: ~7-20 ms for 1 M
codes that fit 16 bits). Read-only once made; two threads making one at once make the same.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

# The chosen values' rows are used when they are at most this share of the rows; past it a
# whole-column mask is as quick and the gathers of the other columns would cost more.
NARROW_SHARE = 0.125
# The stored orders: `<snapshot>/ORDERS_DIR/<column>.<order|starts|sorted>.npy`, and per column
# {"low": int, "by": "starts" | "sorted"} in the snapshot's meta.json under ORDERS_KEY (written
# last: a column listed there has its files). A subfolder: the loader maps `*.npy` as columns.
ORDERS_DIR = "value_rows"
ORDERS_KEY = "value_rows"
# Rows whose value is checked against the column when stored orders are loaded: a file that
# is the right size but not this column's order is caught without reading it all.
SPOT_CHECKS = 16


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

    @classmethod
    def from_arrays(
        cls,
        order: np.ndarray,
        *,
        starts: np.ndarray | None = None,
        sorted: np.ndarray | None = None,
        low: int = 0,
    ) -> ValueRows:
        """The ValueRows whose `arrays()` these are (memory-mapped ones are not copied)."""
        if (starts is None) == (sorted is None):
            raise ValueError("one of starts and sorted")
        made = cls.__new__(cls)
        made.order, made.starts, made.sorted, made.low = order, starts, sorted, int(low)
        return made

    def arrays(self) -> tuple[dict[str, np.ndarray], dict[str, int | str]]:
        """({"order": .., "starts" or "sorted": ..}, {"low": .., "by": "starts" or "sorted"}):
        what `from_arrays` takes, for writing beside the snapshot."""
        by = "sorted" if self.starts is None else "starts"
        return {"order": self.order, by: getattr(self, by)}, {"low": self.low, "by": by}

    def check(self, column: np.ndarray) -> None:
        """ValueError unless these arrays are plausibly `column`'s order: lengths and dtypes,
        the table's ends, and SPOT_CHECKS rows' values (cheap: a few reads of each file)."""
        n = len(column)
        wide = np.int32 if n < 2**31 else np.int64
        if self.order.dtype != wide or self.order.ndim != 1 or len(self.order) != n:
            raise ValueError(f"order: {self.order.dtype}[{len(self.order)}], column of {n}")
        if self.starts is not None:
            s = self.starts
            if s.dtype != np.int64 or s.ndim != 1 or len(s) < 2 or s[0] != 0 or s[-1] != n:
                raise ValueError(f"starts: {s.dtype}[{len(s)}] ending {s[-1] if len(s) else None}")  # fmt: skip
            if (np.diff(s) < 0).any():  # at most 2**16 + 1 entries: read whole
                raise ValueError("starts: not ascending")
        elif self.sorted.dtype != column.dtype or len(self.sorted) != n:
            raise ValueError(f"sorted: {self.sorted.dtype}[{len(self.sorted)}], column {column.dtype}")  # fmt: skip
        at = np.linspace(0, n - 1, min(n, SPOT_CHECKS)).astype(np.int64)  # ascending
        if self.starts is not None:
            held = np.searchsorted(self.starts, at, "right") - 1 + self.low
        else:
            held = self.sorted[at]
        rows = self.order[at]
        if (np.diff(held) < 0).any():
            raise ValueError("sorted: not ascending")
        if len(at) and (rows.min() < 0 or rows.max() >= n or (column[rows] != held).any()):
            raise ValueError("order: a row's value is not its place's")

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
            cache[name] = stored(snap, name) or ValueRows(snap.cols[name])
        count = cache[name].count(values)
        if best is None or count < best[0]:
            best = (count, name, values)
    if best is None or best[0] > NARROW_SHARE * len(snap):
        return None
    return cache[best[1]].rows(best[2])


def stored(snap, name: str) -> ValueRows | None:
    """The stored ValueRows of column `name` of a loaded snapshot, memory-mapped; None when it
    has none (written before them, or built in memory) or they do not match the column (torn
    or stray files: logged, and the caller builds them as before)."""
    kept = snap.meta.get(ORDERS_KEY, {}).get(name)
    folder = getattr(snap, "_dir", None)
    if kept is None or folder is None:
        return None
    try:
        files = {part: Path(folder) / ORDERS_DIR / f"{name}.{part}.npy" for part in ("order", kept["by"])}  # fmt: skip
        arrays = {part: np.asarray(np.load(path, mmap_mode="r")) for part, path in files.items()}
        made = ValueRows.from_arrays(arrays.pop("order"), **arrays, low=kept["low"])
        made.check(snap.cols[name])
        return made
    except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        logger.warning("stored value rows of %s in %s unusable (%s); building them", name, folder, exc)  # fmt: skip
        return None


def any_of(column: np.ndarray, codes: list[int]) -> NDArray[np.bool_]:
    """column ∈ codes. A few codes are compared one by one: over 1 M rows each `==` costs
    ~0.4 ms where np.isin costs ~2.5 ms whatever the count."""
    if len(codes) > 8:
        return np.isin(column, codes)
    out = np.zeros(len(column), bool)
    for code in codes:
        out |= column == code
    return out
