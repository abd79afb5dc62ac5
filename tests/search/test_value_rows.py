"""A filter's allowed rows read through the rows of its chosen values (search.value_rows) are
the rows a whole-column mask passes: same rows, same order, same dtype."""

import random
from decimal import Decimal

import numpy as np
import pytest

from search import selectors, value_rows
from search.filters import SearchFilters
from search.snapshot import Snapshot
from search.value_rows import ValueRows

BRANDS = [f"b{i}" for i in range(30)]
CATEGORIES = ["Kitchen", "Garden", "Office"]
COLOURS = ["red", "navy", "green"]


def synthetic(n=20_000, seed=0, store_pk=7):
    rng = np.random.default_rng(seed)
    cols = {
        "rows": np.arange(n, dtype=np.int64) * 2 + 1,
        "active": rng.random(n) < 0.9,
        "in_stock": rng.random(n) < 0.5,
        "price": np.where(rng.random(n) < 0.1, np.nan, rng.uniform(1, 100, n)),
        "store": rng.choice([store_pk, store_pk + 1, 40_000], n).astype(np.int32),
        "brand": rng.integers(-1, len(BRANDS), n).astype(np.int32),
        "category": rng.integers(-1, len(CATEGORIES), n).astype(np.int32),
        "colour": rng.integers(-1, len(COLOURS), n).astype(np.int32),
    }
    stores = {str(store_pk): ["s0", "Shop A"], str(store_pk + 1): ["s1", "Shop B"]}
    stores["40000"] = ["far", "Far shop"]
    meta = {"rows": n, "stores": stores, "codes": {"brand": BRANDS, "category": CATEGORIES}}
    meta["codes"]["colour"] = COLOURS
    snap = Snapshot(cols, meta)
    snap._code_of = {k: {v: i for i, v in enumerate(vs)} for k, vs in meta["codes"].items()}
    return snap


def cases(rng, count):
    for _ in range(count):
        filters = SearchFilters(
            stores=tuple(rng.sample(["s0", "s1", "far", "nope"], rng.randrange(0, 3))),
            brands=tuple(rng.sample([*BRANDS, "Unknown"], rng.choice([0, 0, 1, 1, 2, 9]))),
            categories=tuple(rng.sample(CATEGORIES, rng.randrange(0, 2))),
            attributes=(("colour", tuple(rng.sample(COLOURS, rng.randrange(0, 2)))),),
            min_price=rng.choice([None, Decimal("20")]),
            in_stock=rng.random() < 0.4,
        )
        if not filters.is_empty:
            yield filters


@pytest.mark.parametrize("share", [0.0, 0.125, 1.0])
def test_narrowed_rows_equal_the_whole_column_mask(monkeypatch, share):
    monkeypatch.setattr(value_rows, "NARROW_SHARE", share)
    snap = synthetic()
    for filters in cases(random.Random(share), 150):
        for active_now in (False, True):
            got = snap.allowed_rows(filters, as_of_build=True, active_now=active_now)
            expected = np.flatnonzero(snap.mask(filters, active_now=active_now))
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, expected, err_msg=str(filters))


def test_a_value_the_snapshot_lacks_passes_no_row(monkeypatch):
    monkeypatch.setattr(value_rows, "NARROW_SHARE", 1.0)
    snap = synthetic()
    assert len(snap.allowed_rows(SearchFilters(brands=("Unknown",)))) == 0
    assert len(snap.allowed_rows(SearchFilters(stores=("nope",)))) == 0


def test_value_rows_lists_each_values_rows_in_row_order():
    column = np.random.default_rng(3).integers(-1, 50, 5000).astype(np.int32)
    column[:3] = 70_000  # past 16 bits: sorted as int32
    for col in (column, column[3:]):
        rows = ValueRows(col)
        for values in ([], [4], [4, 4], [0, 9, -1], [70_000], [123_456, 4]):
            expected = np.flatnonzero(np.isin(col, values))
            np.testing.assert_array_equal(rows.rows(values), expected)
            assert rows.count(values) == len(expected)


def test_a_columns_rows_are_built_once_per_snapshot(monkeypatch):
    monkeypatch.setattr(value_rows, "NARROW_SHARE", 1.0)
    snap = synthetic()
    snap.allowed_rows(SearchFilters(brands=("b3",)))
    built = snap._value_rows["brand"]
    snap.allowed_rows(SearchFilters(brands=("b4",), categories=("Garden",)))
    assert snap._value_rows["brand"] is built


@pytest.mark.django_db
def test_narrowed_allowed_ids_match_the_database(tmp_path, monkeypatch):
    from tests.search.test_snapshot import catalogue, filter_cases, snapshot

    monkeypatch.setattr(value_rows, "NARROW_SHARE", 1.0)
    snap = snapshot(tmp_path, catalogue())
    checked = 0
    for filters in filter_cases(random.Random(5), 80):
        if filters.is_empty or not snap.serves(filters):
            continue
        expected = selectors.allowed_image_ids(filters=filters)
        assert snap.allowed_image_ids(filters).tolist() == expected.tolist(), filters
        checked += 1
    assert checked > 10
