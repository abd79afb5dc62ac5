"""Filter columns' value orders written with the snapshot (search.snapshot_write) and mapped by
each worker (search.value_rows.stored) answer exactly as orders built from the column; an old
snapshot without them, or one whose files are torn, still answers the same."""

import json
import logging
import random

import numpy as np
import pytest

from search import value_rows
from search.snapshot import SNAPSHOT_DIR, Snapshot
from search.snapshot_write import FILTERED, write_row_columns
from search.value_rows import ORDERS_DIR, ORDERS_KEY, ValueRows
from tests.search.test_snapshot import catalogue, filter_cases, snapshot

VALUES = ([], [4], [4, 4], [0, 9, -1], [70_000], [123_456, 4], [-5], [10**9])


def columns():
    rng = np.random.default_rng(11)
    small = rng.integers(-1, 50, 5000).astype(np.int32)
    wide = small.copy()
    wide[:3] = 70_000  # past 16 bits: the sorted path
    stores = rng.choice([7, 8, 40_000], 5000).astype(np.int32)
    return {"small": small, "wide": wide, "stores": stores, "empty": np.zeros(0, np.int32)}


@pytest.mark.parametrize("name", ["small", "wide", "stores", "empty"])
def test_stored_arrays_answer_as_the_built_ones(tmp_path, name):
    column = columns()[name]
    built = ValueRows(column)
    arrays, kept = built.arrays()
    assert kept["by"] == ("starts" if name == "small" else "sorted")
    mapped = {}
    for part, values in arrays.items():  # saved and mapped, as a worker reads them
        np.save(tmp_path / f"{part}.npy", values)
        mapped[part] = np.asarray(np.load(tmp_path / f"{part}.npy", mmap_mode="r"))
    stored = ValueRows.from_arrays(mapped.pop("order"), **mapped, low=kept["low"])
    stored.check(column)
    for values in (*VALUES, [7], [40_000, 8]):
        expected = np.flatnonzero(np.isin(column, values))
        for rows in (built, stored):
            got = rows.rows(values)
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, expected)
            assert rows.count(values) == len(expected)


def test_check_refuses_arrays_that_are_not_the_columns():
    column = columns()["small"]
    arrays, kept = ValueRows(column).arrays()
    bad = [
        {**arrays, "order": arrays["order"][:-1]},
        {**arrays, "order": arrays["order"].astype(np.int64)},
        {**arrays, "order": np.arange(len(column), dtype=np.int32)},  # right size, wrong rows
        {**arrays, "starts": arrays["starts"][:-1]},
        {**arrays, "starts": arrays["starts"][::-1].copy()},
    ]
    for parts in bad:
        parts = dict(parts)
        made = ValueRows.from_arrays(parts.pop("order"), **parts, low=kept["low"])
        with pytest.raises(ValueError, match=r"^(order|starts|sorted): "):
            made.check(column)
    wide = columns()["wide"]
    arrays, kept = ValueRows(wide).arrays()
    for parts in ({**arrays, "sorted": arrays["sorted"][::-1].copy()}, {**arrays, "sorted": arrays["sorted"][1:]}):  # fmt: skip
        made = ValueRows.from_arrays(parts.pop("order"), **parts, low=kept["low"])
        with pytest.raises(ValueError, match=r"^(order|sorted): "):
            made.check(wide)
    with pytest.raises(ValueError, match="one of starts and sorted"):
        ValueRows.from_arrays(arrays["order"], low=0)


def allowed(snap, cases):
    return [snap.allowed_rows(f, as_of_build=True).tolist() for f in cases]


@pytest.mark.django_db
def test_a_written_snapshot_maps_its_orders_and_builds_none(tmp_path, monkeypatch):
    monkeypatch.setattr(value_rows, "NARROW_SHARE", 1.0)
    cases = list(filter_cases(random.Random(3), 60))
    snap = snapshot(tmp_path, catalogue(n=40))
    assert set(snap.meta[ORDERS_KEY]) == set(FILTERED)
    assert not any(name.startswith(("store.", "brand.")) for name in snap.cols)
    expected = [np.flatnonzero(snap.mask(f)).tolist() for f in cases]
    with monkeypatch.context() as patched:
        patched.setattr(ValueRows, "__init__", lambda self, column: pytest.fail("built"))
        assert allowed(snap, cases) == expected
    assert {"store", "brand", "category", "colour"} <= set(snap._value_rows)


@pytest.mark.django_db
def test_an_old_snapshot_without_orders_builds_them_and_answers_the_same(tmp_path, monkeypatch):
    monkeypatch.setattr(value_rows, "NARROW_SHARE", 1.0)
    cases = list(filter_cases(random.Random(4), 60))
    snap = snapshot(tmp_path, catalogue(n=40))
    expected = allowed(snap, cases)
    out = tmp_path / SNAPSHOT_DIR
    meta = json.loads((out / "meta.json").read_text("utf-8"))
    del meta[ORDERS_KEY]  # as written before the orders existed
    (out / "meta.json").write_text(json.dumps(meta), "utf-8")
    old = Snapshot.load(tmp_path)
    assert value_rows.stored(old, "brand") is None
    assert allowed(old, cases) == expected
    # write_row_columns (bench.search_cpu's catalogues) adds them to such a snapshot
    assert write_row_columns(tmp_path) is True
    renewed = Snapshot.load(tmp_path)
    assert value_rows.stored(renewed, "brand") is not None
    assert allowed(renewed, cases) == expected
    assert write_row_columns(tmp_path) is False


@pytest.mark.django_db
@pytest.mark.parametrize("damage", ["torn", "short", "empty", "header", "missing"])
def test_a_damaged_order_file_falls_back_to_building(tmp_path, monkeypatch, caplog, damage):
    monkeypatch.setattr(value_rows, "NARROW_SHARE", 1.0)
    cases = list(filter_cases(random.Random(5), 60))
    snap = snapshot(tmp_path, catalogue(n=40))
    expected = allowed(snap, cases)
    path = tmp_path / SNAPSHOT_DIR / ORDERS_DIR / "brand.order.npy"
    size = path.stat().st_size
    if damage == "torn":  # the data cut short: the mapping cannot be made
        with open(path, "r+b") as f:
            f.truncate(size - 4)
    elif damage == "short":  # a whole file of one row fewer
        np.save(path, np.load(path)[:-1])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "header":
        with open(path, "r+b") as f:
            f.truncate(20)
    else:
        path.unlink()
    fresh = Snapshot.load(tmp_path)
    with caplog.at_level(logging.WARNING, logger="search.value_rows"):
        assert allowed(fresh, cases) == expected
    assert "stored value rows of brand" in caplog.text
    assert value_rows.stored(fresh, "category") is not None  # the others are still mapped


@pytest.mark.django_db
def test_an_empty_snapshot_has_orders_and_answers_nothing(tmp_path, monkeypatch):
    from search.filters import SearchFilters

    snap = snapshot(tmp_path, np.zeros(0, dtype=np.int64))
    assert set(snap.meta[ORDERS_KEY]) == set(FILTERED)
    monkeypatch.setattr(ValueRows, "__init__", lambda self, column: pytest.fail("built"))
    assert snap.allowed_rows(SearchFilters(brands=("x",)), as_of_build=True).tolist() == []
    assert value_rows.stored(snap, "store") is not None
