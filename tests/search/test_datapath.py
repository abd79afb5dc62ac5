"""The lean data path (MEEPO_SEARCH_DATAPATH, default "fast") changes where candidate rows,
facets and a filtered page's narrower lists come from, never the results: pages equal those of
the plain path, in the steady state and after products changed since the build."""

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from catalog.models import Product
from search import live_rows, selectors, services, signals, snapshot
from search.index import get_index
from search.selectors import SearchFilters
from search.snapshot import SNAPSHOT_DIR, Snapshot
from search.snapshot_write import write_row_columns
from tests.search.test_snapshot_parity import catalogue, outcome, searches

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _reload_at_once(settings):
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0
    settings.MEEPO_RELEVANCE_FLOOR = False  # the tiny random CLIP's scores mean nothing


def steady(settings):
    """The catalogue, its index built, and nothing changed since (stamps an hour back)."""
    catalogue(settings)
    Product.objects.update(updated_at=timezone.now() - timedelta(hours=1))


def change_some() -> None:
    """Writes after the build, as catalog.services makes them (each moves updated_at)."""
    now = timezone.now()
    ids = list(Product.objects.order_by("pk").values_list("pk", flat=True))
    Product.objects.filter(pk__in=ids[0:40:7]).update(is_active=False, updated_at=now)
    Product.objects.filter(pk__in=ids[1:60:5]).update(price=Decimal("1.5"), updated_at=now)
    Product.objects.filter(pk__in=ids[2:80:6]).update(availability="out_of_stock", updated_at=now)
    Product.objects.filter(pk__in=ids[3:90:9]).update(gtin="0000000000001", updated_at=now)
    Product.objects.filter(pk__in=ids[4:50:8]).update(currency="USD", updated_at=now)


def both_ways(monkeypatch, params):
    pages = []
    for value in ("plain", "fast"):
        monkeypatch.setenv("MEEPO_SEARCH_DATAPATH", value)
        services.clear_caches()
        pages.append(outcome(services.search_products(**params)))
    return pages


@pytest.mark.parametrize("changed", [False, True])
def test_lean_and_plain_paths_give_the_same_pages(tiny_clip, settings, monkeypatch, changed):
    steady(settings)
    if changed:
        change_some()
    with_hits = 0
    for params in searches(120, seed=2):
        plain, fast = both_ways(monkeypatch, params)
        assert fast == plain, params
        with_hits += bool(plain[0])
    assert with_hits > 90


def test_candidate_rows_come_from_the_snapshot_unless_changed(tiny_clip, settings, monkeypatch):
    steady(settings)
    change_some()
    ids = list(Product.objects.values_list("pk", flat=True))
    monkeypatch.setenv("MEEPO_SEARCH_DATAPATH", "plain")
    plain = selectors.candidate_rows(ids, first_seen=False)
    monkeypatch.setenv("MEEPO_SEARCH_DATAPATH", "fast")
    snap = snapshot.for_index(get_index())
    from_columns, rest = snap.candidate_rows(ids, live_rows.changed_ids(snap))
    assert from_columns  # both sides are exercised
    assert rest
    assert selectors.candidate_rows(ids, first_seen=False) == plain
    assert {pk: selectors.CandidateRow(*row) for pk, row in from_columns.items()} == {
        pk: plain[pk] for pk in from_columns
    }
    assert str(plain[ids[0]].price).count(".") == 1  # Decimals as the ORM reads them
    assert all(str(from_columns[pk][2]) == str(plain[pk].price) for pk in from_columns)


def test_row_columns_are_added_to_an_older_snapshot(tiny_clip, settings, monkeypatch):
    steady(settings)
    version = get_index().path
    for name in ("gtin", "currency", "price_milli"):
        (version / SNAPSHOT_DIR / f"{name}.npy").unlink()
    meta_path = version / SNAPSHOT_DIR / "meta.json"
    meta_path.write_text(meta_path.read_text().replace('"currencies"', '"old_currencies"'))
    ids = list(Product.objects.values_list("pk", flat=True))
    old = Snapshot.load(version)
    assert old.candidate_rows(ids, np.zeros(0, np.int64)) == ({}, ids)  # the database answers
    assert write_row_columns(version)
    assert not write_row_columns(version)  # nothing left to add
    found, rest = Snapshot.load(version).candidate_rows(ids, np.zeros(0, np.int64))
    assert not rest
    monkeypatch.setenv("MEEPO_SEARCH_DATAPATH", "plain")
    database = selectors.candidate_rows(ids, first_seen=False)
    assert {pk: selectors.CandidateRow(*row) for pk, row in found.items()} == database


def test_stock_filtered_facets_need_no_database_query(tiny_clip, settings, monkeypatch):
    steady(settings)
    params = {"query": "red mug", "filters": SearchFilters(brands=("Acme",), in_stock=True)}
    plain, _ = both_ways(monkeypatch, params)
    monkeypatch.setattr(selectors, "facet_counts", lambda **_: pytest.fail("database facets"))
    services.clear_caches()
    assert outcome(services.search_products(**params)) == plain
    assert plain[4]["brand"]  # facets were counted


def test_a_filtered_page_looks_up_exact_matches_once(tiny_clip, settings, monkeypatch):
    steady(settings)
    calls = []
    real = selectors.exact_match_ids
    monkeypatch.setattr(
        selectors, "exact_match_ids", lambda **k: calls.append(k["filters"]) or real(**k)
    )
    params = {"query": "red mug", "filters": SearchFilters(brands=("Acme",))}
    plain, fast = both_ways(monkeypatch, params)
    assert fast == plain
    assert [f.brands for f in calls] == [(), ("Acme",), ()]  # plain: both; fast: the wider only


def test_one_changed_since_read_per_request(tiny_clip, settings, monkeypatch):
    steady(settings)
    reads = []
    real = live_rows._changed_ids
    monkeypatch.setattr(live_rows, "_changed_ids", lambda snap: reads.append(1) or real(snap))
    services.clear_caches()
    services.search_products(query="red mug", filters=SearchFilters(brands=("Birch",)))
    assert len(reads) == 1  # owners of both searches, candidate rows and facets


def test_attribute_words_precheck_matches_query_attributes(tiny_clip):
    from search.attributes import query_attributes

    for query in ["navy", "striped linen", "navy shirt", "red mug", "the navy", "", "navy " * 5]:
        if query_attributes(query) is not None:
            assert selectors.may_name_attributes(query), query
    assert not selectors.may_name_attributes("navy zqxv")
    assert signals.EXACT_LIMIT == 5


@pytest.mark.parametrize("engine", ["auto", "database"])
def test_a_narrower_keyword_list_is_cut_from_the_wider_search(
    tiny_clip, settings, monkeypatch, engine
):
    """Lists longer than the depth: the facet-removed search keeps up to WITHIN_MAX matches,
    and the filtered one's keyword list is cut from them (no second keyword search). The
    database (its ties have no fixed order) lists only the depth: the narrower one searches."""
    steady(settings)
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = engine
    monkeypatch.setattr(services, "CANDIDATE_DEPTH", 6)
    searched = []
    real = selectors.keyword_hits
    monkeypatch.setattr(
        selectors, "keyword_hits", lambda **k: searched.append(k["filters"]) or real(**k)
    )
    for brand in ("Acme", "Birch", "Cobalt"):
        for query in ("red", "mug", "oak lamp"):
            params = {"query": query, "filters": SearchFilters(brands=(brand,)), "limit": 3}
            searched.clear()
            plain, fast = both_ways(monkeypatch, params)
            assert fast == plain, params
            if engine == "auto":
                assert [f.brands for f in searched] == [(), (brand,), ()], params


@pytest.mark.parametrize("path", ["plain", "fast"])
def test_the_keyword_delta_is_read_only_when_something_changed(
    tiny_clip, settings, monkeypatch, path
):
    """Steady state: the owners' look at the changes (once per request) found none, so the
    keyword index's delta needs no query of its own; a product retitled since is found by
    its new words at the next search."""
    from search import keyword_delta

    steady(settings)
    monkeypatch.setenv("MEEPO_SEARCH_DATAPATH", path)
    reads = []
    real = keyword_delta.changed_sql
    monkeypatch.setattr(keyword_delta, "changed_sql", lambda *a: reads.append(1) or real(*a))
    services.clear_caches()
    services.search_products(query="red mug")
    assert bool(reads) == (path == "plain")
    product = Product.objects.order_by("pk").first()
    Product.objects.filter(pk=product.pk).update(title="Zanzibar kettle", updated_at=timezone.now())
    services.clear_caches()
    with live_rows.request_scope():
        found = selectors.keyword_hits(query="zanzibar kettle", filters=SearchFilters(), limit=5)
    assert reads
    assert [pk for pk, _ in found] == [product.pk]


@pytest.mark.parametrize("changed", [False, True])
def test_stock_and_price_counts_equal_the_database(tiny_clip, settings, monkeypatch, changed):
    from search import keyword

    steady(settings)
    if changed:
        change_some()
    kinds = [
        SearchFilters(in_stock=True),
        SearchFilters(brands=("Acme",), in_stock=True),
        SearchFilters(min_price=Decimal("20"), max_price=Decimal("60")),
    ]
    database = []
    real = keyword.backend
    monkeypatch.setattr(keyword, "backend", lambda: database.append(1) or real())
    for query in ("red", "mug", "oak lamp", "striped -navy", "vint"):
        for filters in kinds:
            counts = []
            for value in ("plain", "fast"):
                monkeypatch.setenv("MEEPO_SEARCH_DATAPATH", value)
                services.clear_caches()
                with live_rows.request_scope():
                    positive, negatives = selectors.split_negatives(query)
                    counts.append(
                        selectors.keyword_count(query=positive, filters=filters, exclude=negatives)
                    )
            assert counts[0] == counts[1], (query, filters)
    # Plain: the database counted each; fast: only after changes (none in the steady state).
    assert len(database) == (30 if changed else 15)
