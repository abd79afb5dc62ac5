"""A columnar snapshot of the per-image columns a search page needs, beside each index version.

Written by `pipeline.indexing` (search.snapshot_write) into `<version>/snapshot/` before the
version is published (one chunked read of the catalogue), then memory-mapped read-only by every
worker like the index itself:

    rows.npy        int64   image id of each row; the same ids, in the same order, as ids.npy
    product.npy     int64   owning product id
    asset.npy       int64   image asset id (-1: none)
    store.npy       int32   store id
    brand.npy       int32   code into meta["brand"] (-1: empty)
    category.npy    int32   code into meta["category"] (-1: empty)
    <attribute>.npy int32   code into meta["attributes"][name] (-1: no label), per search.ATTRIBUTES
    price.npy       float64 NaN: no price
    in_stock.npy    bool
    active.npy      bool
    by_product.npy  int64   row numbers sorted by product id (first row per product first)
    product_sorted.npy int64 the product ids in that order (binary-searched, never gathered)
    gtin.npy, currency.npy (code into meta["currencies"]), price_milli.npy (int64, NO_PRICE:
                            none): candidate rows (`candidate_rows`; absent in older ones)
    identifiers.npy int64   sorted hashes of every platform id, SKU, MPN and GTIN (products and
                            variants): search.exact_guard (absent in older ones: not used)
    value_rows/     each filter column's rows ordered by value: search.value_rows (absent in older ones: built per worker)
    meta.json               the code tables, store slugs and names, when it was written

What it answers without the database: the owners of index hits (`owners`), the allowed rows
of a filter on columns that change only with the catalogue's structure (`allowed_rows`: stores,
brands, categories, attributes; rows are the index's rows, so nothing is looked up), and facet
counts over a query's candidates (`facet_counts`: `bincount`s). Price, stock and "active" are
as of the version's build (`read_at`: when the columns were read): search.live_rows corrects
price and stock filters' rows for the products changed since, and `fresh_owners` the active
flag of index hits' owners (re-read by primary key only for the products changed since).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from search import live_rows, value_rows
from search.attributes import ATTRIBUTES
from search.facets import FacetRow, Facets, top_rows
from search.keyword_index import KEYWORD_DIR, META_FILE
from search.per_version import PerVersion
from search.snapshot_values import NO_PRICE, fresh_product_ids, owner_map, prices, value_counts  # noqa: F401  (re-exported)

SNAPSHOT_DIR = "snapshot"
FORMAT = 1
CODED = ("brand", "category", *ATTRIBUTES)
# Image ids are looked up in a table by id while the largest is at most this many times the
# row count (ids of a catalogue are mostly dense); past that, by binary search.
ROW_TABLE_SPARSITY = 4


@dataclass
class Snapshot:
    """One version's snapshot, memory-mapped (see the module docstring for the columns)."""

    cols: dict[str, np.ndarray] = field(repr=False)
    meta: dict[str, Any] = field(repr=False)
    _code_of: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    _aligned: dict[str, bool] = field(default_factory=dict, repr=False)
    _rows_by_id: Any = field(default=None, repr=False)  # see _row_table
    _first_row_by_product: Any = field(default=None, repr=False)  # see _first_row_table
    _value_rows: dict = field(default_factory=dict, repr=False)  # value_rows.ValueRows by column
    _currencies: Any = field(default=None, repr=False)  # see _currency_names
    _dir: Path | None = field(default=None, repr=False)  # where value_rows.stored finds orders

    @classmethod
    def load(cls, version_dir: Path) -> Snapshot | None:
        """The snapshot beside an index version, or None when it has none (older versions)."""
        path = Path(version_dir) / SNAPSHOT_DIR
        if not (path / "meta.json").is_file():
            return None
        meta = json.loads((path / "meta.json").read_text("utf-8"))
        if meta.get("format") != FORMAT:
            return None
        # Plain views of the mappings: np.memmap's Python-level indexing costs ~5 us a gather.
        cols = {p.stem: np.asarray(np.load(p, mmap_mode="r")) for p in path.glob("*.npy")}
        words = Path(version_dir) / KEYWORD_DIR / META_FILE  # for live_rows.since
        if words.is_file():
            meta["keyword_written_at"] = json.loads(words.read_text("utf-8"))["written_at"]
        snap = cls(cols, meta, _dir=path)
        snap._code_of = {
            name: {v: i for i, v in enumerate(values)} for name, values in meta["codes"].items()
        }
        return snap

    def __len__(self) -> int:
        return int(self.meta["rows"])

    def positions(self, image_ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Row of each image id, -1 for ids the snapshot does not hold: one look-up each in a
        table by id when ids are dense (a hit's owner costs one memory access, not a binary
        search's twenty over the mapped column), else a binary search."""
        rows = self.cols["rows"]
        ids = np.asarray(image_ids, dtype=np.int64)
        if not len(rows):
            return np.full(len(ids), -1, np.int64)
        table = self._row_table()
        if table is not None:
            known = (ids >= 0) & (ids < len(table))
            out = np.full(len(ids), -1, np.int64)
            out[known] = table[ids[known]]
            return out
        pos = np.minimum(np.searchsorted(rows, ids), len(rows) - 1)
        return np.where(rows[pos] == ids, pos, -1)

    def _row_table(self) -> NDArray[np.int32] | None:
        """{image id: row} as an int32 array indexed by id (-1: none), made on first use when
        the largest id is at most ROW_TABLE_SPARSITY times the row count (4 bytes per id:
        ~4 MB per process at 1 M dense ids); None otherwise."""
        if self._rows_by_id is None:
            rows = self.cols["rows"]
            top = int(rows[-1]) if len(rows) else 0
            if len(rows) >= 2**31 or top > ROW_TABLE_SPARSITY * max(len(rows), 1) or int(rows[0]) < 0:  # fmt: skip
                self._rows_by_id = False
            else:
                table = np.full(top + 1, -1, np.int32)
                table[np.asarray(rows)] = np.arange(len(rows), dtype=np.int32)
                self._rows_by_id = table
        return None if self._rows_by_id is False else self._rows_by_id

    def owners(
        self, image_ids: list[int], *, as_of_build: bool = True
    ) -> dict[int, tuple[int, int | None]]:
        """{image id: (product id, asset id)} for hits whose product was active at the build:
        `selectors.image_products` as of the snapshot, without a query. `as_of_build=False`
        keeps every known image whatever its product's flag then (see `fresh_owners`)."""
        ids = np.asarray(image_ids, dtype=np.int64)
        pos = self.positions(ids)
        keep = pos >= 0
        if as_of_build:
            keep[keep] = self.cols["active"][pos[keep]]
        pos = pos[keep]
        return owner_map(ids[keep], self.cols["product"][pos], self.cols["asset"][pos])

    def fresh_owners(self, image_ids: list[int]) -> dict[int, tuple[int, int | None]]:
        """`selectors.image_products` exactly: owners from the columns (an image's product and
        asset never change within a version), active as of the build unless the product
        changed since (search.live_rows.changed_ids: every write of `is_active` moves
        `updated_at`); only changed owners are read by primary key. Past MAX_CHANGED changes
        every owner is (the original one query)."""
        ids = np.asarray(image_ids, dtype=np.int64)
        pos = self.positions(ids)
        keep = pos >= 0
        if not keep.all():
            ids, pos = ids[keep], pos[keep]
        products, assets = self.cols["product"][pos], self.cols["asset"][pos]
        changed = live_rows.changed_ids(self)
        if changed is None:
            recheck, active = np.ones(len(products), bool), np.zeros(len(products), bool)
        else:  # a fancy-index gather: a new array, writable
            active = self.cols["active"][pos]
            recheck = np.isin(products, changed) if len(changed) else None
        if recheck is not None and recheck.any():
            now = fresh_product_ids(sorted(set(products[recheck].tolist())))
            active[recheck] = np.isin(products[recheck], np.fromiter(now, np.int64, len(now)))
        if not active.all():
            ids, products, assets = ids[active], products[active], assets[active]
        return owner_map(ids, products, assets)

    def serves(self, filters) -> bool:
        """Whether `filters` only use columns that change with the index (no price or stock)."""
        return filters.is_structural

    def mask(
        self, filters, rows: NDArray[np.int64] | None = None, *, active_now: bool = False
    ) -> NDArray[np.bool_]:
        """Which of `rows` (default: all) are active products passing `filters` (price and
        stock as of the build). `active_now`: the rows asked about are known to be active now,
        so the build-time flag is not applied."""

        def col(name: str) -> np.ndarray:
            return self.cols[name] if rows is None else self.cols[name][rows]

        size = len(self) if rows is None else len(rows)
        m = np.ones(size, bool) if active_now else np.array(col("active"), dtype=bool)
        for name, values in self.chosen_values(filters):
            m &= value_rows.any_of(col(name), values)
        if filters.min_price is not None:
            m &= col("price") >= float(filters.min_price)  # NaN compares False
        if filters.max_price is not None:
            m &= col("price") <= float(filters.max_price)
        if filters.in_stock:
            m &= col("in_stock")
        return m

    def chosen_values(self, filters) -> list[tuple[str, list[int]]]:
        """(column, values one of which a passing row holds) per store, brand, category and
        attribute condition of `filters`; values it lacks are left out (none left: no row)."""
        out = []
        if filters.stores:
            slugs = set(filters.stores)
            out.append(("store", [int(pk) for pk, (slug, _) in self.meta["stores"].items() if slug in slugs]))  # fmt: skip
        coded = [("brand", filters.brands), ("category", filters.categories)]
        coded += [(n, v) for n, v in filters.attributes if n in ATTRIBUTES]
        for name, values in coded:
            if values:
                out.append((name, [self._code_of[name][v] for v in values if v in self._code_of[name]]))  # fmt: skip
        return out

    def allowed_image_ids(self, filters) -> NDArray[np.int64] | None:
        """Sorted image ids passing `filters` (None: all), like `selectors.allowed_image_ids`
        over the indexed images. Only for filters this snapshot `serves`; otherwise ValueError."""
        if filters.is_empty:
            return None
        return np.asarray(self.cols["rows"][self.allowed_rows(filters)], dtype=np.int64)

    def allowed_rows(
        self, filters, *, active_now: bool = False, as_of_build: bool = False
    ) -> NDArray[np.int64]:
        """Sorted rows (= the index's rows, see `aligned_with`) passing `filters`, which must be
        structural unless `as_of_build` (price and stock as of the build: the caller corrects
        for changes since). `active_now`: keep rows whatever their build-time active flag (a
        superset whose hits the caller checks now)."""
        if not (as_of_build or self.serves(filters)):
            raise ValueError("price and stock filters need the database")
        rows = value_rows.narrowest(self, filters, self._value_rows)
        if rows is None:
            return np.flatnonzero(self.mask(filters, active_now=active_now)).astype(np.int64)
        return rows[self.mask(filters, rows, active_now=active_now)]

    def rows_of_products(self, product_ids) -> NDArray[np.int64]:
        """Every row (sorted) of each product id the snapshot holds."""
        self.product_rows([])  # makes product_sorted for the first builds of this format
        order, keys = self.cols["by_product"], self.cols["product_sorted"]
        ids = np.asarray(product_ids, dtype=np.int64)
        lo, hi = np.searchsorted(keys, ids, "left"), np.searchsorted(keys, ids, "right")
        counts = hi - lo
        total = int(counts.sum())
        starts = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(total)
        return np.sort(np.asarray(order[starts], dtype=np.int64))

    def aligned_with(self, index) -> bool:
        """Whether this snapshot's rows are `index`'s rows (ids.npy), row for row: then allowed
        rows are index positions. Compared once per snapshot and index version."""
        key = str(index.path)
        if key not in self._aligned:
            rows = self.cols["rows"]
            self._aligned[key] = len(rows) == index.ntotal and bool(np.array_equal(rows, index.ids))
        return self._aligned[key]

    def product_rows(self, product_ids: list[int]) -> NDArray[np.int64]:
        """One row per product id the snapshot holds (its first image row), -1 otherwise."""
        order = self.cols["by_product"]
        if "product_sorted" not in self.cols:  # written by the first builds of this format
            self.cols["product_sorted"] = np.asarray(self.cols["product"][order])
        keys = self.cols["product_sorted"]
        ids = np.asarray(product_ids, dtype=np.int64)
        if not len(keys) or not len(ids):
            return np.full(len(ids), -1, np.int64)
        table = self._first_row_table()
        if table is not None:
            known = (ids >= 0) & (ids < len(table))
            out = np.full(len(ids), -1, np.int64)
            out[known] = table[ids[known]]
            return out
        at = np.minimum(np.searchsorted(keys, ids), len(keys) - 1)
        return np.where(keys[at] == ids, order[at], -1)

    def _first_row_table(self) -> NDArray[np.int32] | None:
        """{product id: its first row} as an int32 array indexed by id (-1: none), made on first
        use when ids are dense enough (as `_row_table`); None otherwise."""
        if self._first_row_by_product is None:
            keys, order = self.cols["product_sorted"], self.cols["by_product"]
            top = int(keys[-1])
            if len(keys) >= 2**31 or top > ROW_TABLE_SPARSITY * len(keys):
                self._first_row_by_product = False
            else:
                keys = np.asarray(keys)
                first = np.ones(len(keys), bool)
                first[1:] = keys[1:] != keys[:-1]
                first &= keys >= 0  # -1: an image no longer in the catalogue
                table = np.full(max(top, 0) + 1, -1, np.int32)
                table[keys[first]] = np.asarray(order)[first]
                self._first_row_by_product = table
        return None if self._first_row_by_product is False else self._first_row_by_product

    def candidate_rows(
        self, product_ids: list[int], changed, make=None
    ) -> tuple[dict[int, tuple], list[int]]:
        """(`selectors.candidate_rows(first_seen=False)` as tuples (or `make(tuple)`) for the
        products held here and not `changed` (search.live_rows.changed_ids; None: all changed)
        since the build, whose columns are still the catalogue's; the other ids, for the
        database). Columns are converted whole (one `tolist` each), not value by value."""
        ids = np.asarray(product_ids, dtype=np.int64)
        if "currencies" not in self.meta or "price_milli" not in self.cols or changed is None:
            return {}, ids.tolist()
        rows = self.product_rows(ids)
        ok = rows >= 0
        if len(changed):
            ok &= ~np.isin(ids, changed)
        every = bool(ok.all())
        rows = rows if every else rows[ok]
        columns = zip(
            [v.decode() for v in self.cols["gtin"][rows].tolist()],
            self.cols["in_stock"][rows].tolist(),
            prices(self.cols["price_milli"][rows].tolist()),
            self._currency_names()[self.cols["currency"][rows]].tolist(),
            itertools.repeat(None),
            self.cols["active"][rows].tolist(),
        )
        keys = (ids if every else ids[ok]).tolist()
        found = dict(zip(keys, columns if make is None else map(make, columns), strict=True))
        return found, [] if every else ids[~ok].tolist()

    def _currency_names(self) -> np.ndarray:
        """meta["currencies"] as an object array (currency codes gathered at once)."""
        if self._currencies is None:
            self._currencies = np.array(self.meta["currencies"], dtype=object)
        return self._currencies

    def holds(self, product_ids: list[int]) -> bool:
        """Whether every product is in the snapshot (a product scraped since the build, found
        by its words, is not: its facets must then come from the database)."""
        return bool((self.product_rows(product_ids) >= 0).all())

    def facet_counts(
        self, *, product_ids: list[int], filters, active_now: bool = False, extra=None
    ) -> Facets:
        """`selectors.facet_counts` over a query's candidates, from the columns: one bincount
        per facet. Candidates are counted once per product, if active and passing `filters`.
        `active_now`: the candidates came from this moment's hits (fresh owners, keyword SQL),
        so the build-time active flag is not applied. `extra`: other candidates' counts to add
        (`facets.candidate_tallies`: {"store": {store id: n}, facet: {value: n}}; its stores
        must be in meta["stores"])."""
        rows = self.product_rows(product_ids)
        rows = rows[rows >= 0]
        rows = rows[self.mask(filters, rows, active_now=active_now)]
        extra = extra or {}
        names, stores = self.meta["stores"], dict(value_counts(self.cols["store"][rows]))
        for pk, n in extra.get("store", {}).items():
            stores[pk] = stores.get(pk, 0) + n
        out: Facets = {
            "store": sorted(
                (FacetRow(names[str(pk)][0], names[str(pk)][1], n) for pk, n in stores.items()),
                key=lambda r: (-r.count, r.label),
            )
        }
        for name in CODED:
            table = self.meta["codes"][name]  # empty: every code is -1, nothing to gather
            counted = (
                {table[c]: n for c, n in value_counts(self.cols[name][rows]) if c >= 0}
                if table
                else {}
            )
            for value, n in extra.get(name, {}).items():
                counted[value] = counted.get(value, 0) + n
            out[name] = top_rows(name, counted)
        return out


_versions: PerVersion[Snapshot] = PerVersion(Snapshot.load, "snapshot")


def for_index(index) -> Snapshot | None:
    """The snapshot of a loaded `SearchIndex`'s version when MEEPO_SEARCH_SNAPSHOT is on and
    the version has one, else None (callers then ask the database). Loaded once per version
    per process; only the newest two versions are kept open."""
    from django.conf import settings

    if not settings.MEEPO_SEARCH_SNAPSHOT:
        return None
    return _versions.get(index.path)


def forget_loaded() -> None:
    """Close every loaded snapshot (tests; the next search loads its version's afresh)."""
    _versions.forget()
