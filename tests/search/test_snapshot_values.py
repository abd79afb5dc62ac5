"""The snapshot's whole-column conversions (search.snapshot_values, Snapshot.candidate_rows'
row maker, facets.top_rows' two-pass sort, live_rows.read_stamp's memo) give the values the
value-by-value code gave."""

import random
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest

from search import live_rows, selectors, snapshot_values
from search.facets import FACET_VALUES, FacetRow, facet_label, top_rows
from tests.search.test_snapshot import catalogue, snapshot


def test_prices_equal_one_by_one_memo_full_or_not(monkeypatch):
    millis = [snapshot_values.NO_PRICE, 0, 5, 12_500, 54_630, 10**12, 12_500]
    expected = [None if m == snapshot_values.NO_PRICE else Decimal(m).scaleb(-3) for m in millis]
    for room in (0, 10**6):
        monkeypatch.setattr(snapshot_values, "PRICE_MEMO", room)
        got = snapshot_values.prices(millis)
        assert got == expected
        assert [str(p) for p in got] == [str(p) for p in expected]  # 12.500, not 12.5


def test_owner_map_keeps_order_and_no_asset_as_none():
    ids, products, assets = (np.array(v, np.int64) for v in ([9, 3, 7], [1, 2, 3], [5, -1, 6]))
    found = snapshot_values.owner_map(ids, products, assets)
    assert list(found.items()) == [(9, (1, 5)), (3, (2, None)), (7, (3, 6))]
    assert snapshot_values.owner_map(ids[:0], products[:0], assets[:0]) == {}


def test_top_rows_as_sorted_by_count_then_value():
    def old(name, counted):
        top = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))[:FACET_VALUES]
        return [FacetRow(v, facet_label(name, v), n) for v, n in top]

    rng = random.Random(5)
    for _ in range(300):
        counted = {f"v{rng.randrange(60)}": rng.randrange(1, 5) for _ in range(rng.randrange(40))}
        for name in ("brand", "colour"):
            assert top_rows(name, counted) == old(name, counted)


@pytest.mark.django_db
def test_candidate_rows_made_as_rows_equal_tuples(tmp_path):
    snap = snapshot(tmp_path, catalogue(n=20))
    asked = [*snap.cols["product"].tolist(), 424_242]
    for changed in (np.zeros(0, np.int64), np.array(asked[:3], np.int64)):
        plain, rest = snap.candidate_rows(asked, changed)
        made, rest_made = snap.candidate_rows(asked, changed, selectors._as_candidate_row)
        assert made == plain
        assert rest_made == rest
        assert list(made) == list(plain)
        assert all(type(row) is selectors.CandidateRow for row in made.values())
        assert 424_242 in rest


def test_read_stamp_follows_margin_and_data_path(monkeypatch):
    class Snap:
        meta = {"read_at": "2026-12-01T10:00:00+00:00", "written_at": "2026-12-01T10:00:00+00:00",
                "keyword_written_at": "2026-12-01T09:00:00+00:00"}  # fmt: skip

    def fresh():
        return live_rows.connection.ops.adapt_datetimefield_value(live_rows.since(Snap()))

    assert live_rows.read_stamp(Snap()) == fresh()
    monkeypatch.setattr(live_rows, "CHANGE_MARGIN", timedelta(0))
    assert live_rows.read_stamp(Snap()) == fresh()
    monkeypatch.setenv("MEEPO_SEARCH_DATAPATH", "plain")
    assert live_rows.read_stamp(Snap()) == fresh()
