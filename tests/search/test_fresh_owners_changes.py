"""Snapshot.fresh_owners corrects the build-time active flag with the products changed since
(search.live_rows.changed_ids), re-reading only those by primary key: still exactly
`selectors.image_products` after the catalogue's own deactivation and reactivation paths."""

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Product
from catalog.services import deactivate_missing_products, touch_products
from search import live_rows, selectors
from tests.search.test_snapshot import catalogue, snapshot

pytestmark = pytest.mark.django_db


def built(tmp_path, n=30):
    """A snapshot of a catalogue last changed an hour before it was read."""
    ids = catalogue(n=n)
    Product.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    return [*ids.tolist(), 424_242], snapshot(tmp_path, ids)


def test_nothing_changed_one_index_only_query(tmp_path, django_assert_num_queries):
    asked, snap = built(tmp_path)
    with django_assert_num_queries(1):
        owners = snap.fresh_owners(asked)
    assert owners == selectors.image_products(asked)
    assert owners == snap.owners(asked)  # the build-time flag stands


def test_deactivated_and_reactivated_by_the_catalogue_services(tmp_path, django_assert_num_queries):
    asked, snap = built(tmp_path)
    products = Product.objects.filter(pk__in={p for p, _ in snap.owners(asked, as_of_build=False).values()})  # fmt: skip
    inactive = list(products.filter(is_active=False))
    assert inactive  # catalogue() makes some
    now = timezone.now()
    store = inactive[0].store
    touch_products(store=store, external_ids=[p.external_id for p in inactive if p.store == store], seen_at=now)  # fmt: skip
    gone = products.filter(is_active=True).exclude(store=store).first()
    Product.objects.filter(store=gone.store).update(last_seen_at=now - timedelta(days=2))
    assert deactivate_missing_products(store=gone.store, seen_since=now - timedelta(days=1))
    with django_assert_num_queries(2):  # changed ids, then those owners by primary key
        owners = snap.fresh_owners(asked)
    assert owners == selectors.image_products(asked)
    assert owners != snap.owners(asked)
    shown = {p for p, _ in owners.values()}
    assert gone.pk not in shown
    assert {p.pk for p in inactive if p.store == store} <= shown


def test_past_max_changed_every_owner_is_read(tmp_path, monkeypatch):
    asked, snap = built(tmp_path)
    monkeypatch.setattr(live_rows, "MAX_CHANGED", 1)
    products = sorted({p for p, _ in snap.owners(asked).values()})
    Product.objects.filter(pk__in=products[:3]).update(is_active=False, updated_at=timezone.now())
    assert live_rows.changed_ids(snap) is None
    assert snap.fresh_owners(asked) == selectors.image_products(asked)
    assert not {p for p, _ in snap.fresh_owners(asked).values()} & set(products[:3])


def test_changed_ids_are_those_written_since_the_read(tmp_path):
    _, snap = built(tmp_path)
    assert live_rows.changed_ids(snap).tolist() == []
    some = sorted(Product.objects.values_list("pk", flat=True))[:2]
    Product.objects.filter(pk__in=some).update(updated_at=timezone.now())
    assert live_rows.changed_ids(snap).tolist() == some


def test_positions_by_table_equal_the_binary_search(tmp_path, monkeypatch):
    import numpy as np

    from search import snapshot as snapshot_module

    ids = catalogue(n=30)
    # PostgreSQL's sequences are not rolled back between tests, so ids may start far above the
    # row count: allow any sparsity for the table case (it is a few KB here either way).
    monkeypatch.setattr(snapshot_module, "ROW_TABLE_SPARSITY", 10**9)
    snap = snapshot(tmp_path, ids[::2])  # every other image: gaps between ids
    asked = np.array([*ids.tolist(), -5, 0, int(ids[-1]) + 1, 10**12], dtype=np.int64)
    by_table = snap.positions(asked)
    assert isinstance(snap._rows_by_id, np.ndarray)  # the table was made
    expected = [ids[::2].tolist().index(i) if i in ids[::2] else -1 for i in asked.tolist()]
    assert by_table.tolist() == expected
    products = [*Product.objects.values_list("pk", flat=True), -1, 0, 10**12]
    first_rows = snap.product_rows(products).tolist()
    assert isinstance(snap._first_row_by_product, np.ndarray)
    monkeypatch.setattr(snapshot_module, "ROW_TABLE_SPARSITY", 0)  # ids too sparse for a table
    (tmp_path / "sparse").mkdir()
    sparse = snapshot(tmp_path / "sparse", ids[::2])
    assert sparse.positions(asked).tolist() == expected
    assert sparse._rows_by_id is False
    assert first_rows == sparse.product_rows(products).tolist()
    assert sparse._first_row_by_product is False
    assert (snap.product_rows(products) >= 0).sum() == len({p for p, _ in snap.owners(ids[::2].tolist(), as_of_build=False).values()})  # fmt: skip
