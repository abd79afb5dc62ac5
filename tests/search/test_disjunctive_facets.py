"""A filtered page's disjunctive counts (a chosen store, brand or category counts its siblings as
if it were not chosen) are the counts of the same query with that facet's filter removed: the
facet-removed search ranked (its signals only: never hydrated or rendered), its candidates
counted; from its cached ranked list when the shopper saw that page; kept for the next page and
for unticking. These tests pin the counts for any cheaper way of getting them (issue 13).
"""

from dataclasses import replace

import pytest
from django.utils import timezone

from catalog.models import Product, Store
from search import pages, selectors, services, signals
from search.selectors import SearchFilters
from tests.factories import ProductFactory
from tests.search.test_snapshot_parity import catalogue, searches

pytestmark = pytest.mark.django_db
CHOSEN = {"store": "stores", "brand": "brands", "category": "categories"}


@pytest.fixture(autouse=True)
def _tiny_model(tiny_clip, settings):
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0
    settings.MEEPO_RELEVANCE_FLOOR = False  # the tiny random CLIP's scores mean nothing


def counted_in_full(query, filters, depth, sort="relevance"):
    """Each chosen facet's counts as the page makes them: the facet-removed search ranked
    in full (`signals.ranked`, total and all), its candidates merged one per GTIN as its own
    page merges them (`build_page`), then counted; None: it found nothing (the page keeps the
    filtered counts)."""
    expected = {}
    for name, field in CHOSEN.items():
        if getattr(filters, field):
            others = replace(filters, **{field: ()})
            services.clear_caches()
            found, _ = signals.ranked(query, others, depth, {})
            merged = pages.merged_candidates(found.candidates, sort)[0]
            ids = [c.product_id for c in merged]
            expected[name] = pages.facet_counts(ids, others)[name] if ids else None
    return expected


def assert_same_counts(params):
    depth = services._depth(params["offset"], params["limit"])
    if params["sort"] != "relevance":
        depth = services.CANDIDATE_DEPTH
    expected = counted_in_full(params["query"], params["filters"], depth, params["sort"])
    services.clear_caches()
    page = services.search_products(**params, spell=False)
    for name, rows in expected.items():
        if rows is not None:
            assert page.facets[name] == rows, (params, name)
    return page


def test_disjunctive_counts_equal_the_full_facet_removed_search(settings):
    catalogue(settings)
    chosen = [p for p in searches(120, seed=5) if any(getattr(p["filters"], f) for f in CHOSEN.values())]  # fmt: skip
    assert len(chosen) >= 40
    minus = 0
    for params in chosen:
        assert_same_counts(params)
        minus += " -" in params["query"]
    assert minus  # minus-words (dropped outside the keyword list) are among them


def test_a_refined_page_counts_from_the_unfiltered_ranked_list(settings, monkeypatch):
    catalogue(settings)
    calls = []
    real = signals.text_signals
    monkeypatch.setattr(signals, "text_signals", lambda *a, **k: calls.append(k) or real(*a, **k))
    services.search_products(query="red mug", spell=False)
    assert len(calls) == 1
    page = services.search_products(
        query="red mug", filters=SearchFilters(brands=("Acme",)), spell=False
    )
    assert [c["filters"] for c in calls[1:]] == [SearchFilters(brands=("Acme",))]
    assert services.search_products(query="red mug", spell=False).cached
    monkeypatch.setattr(signals, "text_signals", real)
    depth = services.CANDIDATE_DEPTH
    assert page.facets["brand"] == counted_in_full("red mug", SearchFilters(brands=("Acme",)), depth)["brand"]  # fmt: skip


def test_a_cold_filtered_page_ranks_and_hydrates_only_its_own_search(settings, monkeypatch):
    catalogue(settings)
    calls = {"signals": 0, "hydrate": 0}
    real_signals, real_hydrate = signals.text_signals, selectors.hydrate_products

    def counting(name, real):
        def call(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(signals, "text_signals", counting("signals", real_signals))
    monkeypatch.setattr(selectors, "hydrate_products", counting("hydrate", real_hydrate))
    filters = SearchFilters(brands=("Birch",), categories=("Kitchen",))
    first = services.search_products(query="oak", filters=filters, limit=12, spell=False)
    assert calls == {"signals": 3, "hydrate": 1}  # its own search and one per chosen facet
    second = services.search_products(query="oak", filters=filters, offset=12, limit=12)
    assert calls == {"signals": 3, "hydrate": 2}  # the next page: every list kept
    assert second.facets["brand"] == first.facets["brand"]
    assert second.facets["category"] == first.facets["category"]
    # Unticking the brand: that search was ranked for the brand's counts, so it is kept (only
    # its own category counts, over the unfiltered search, are new).
    unticked = SearchFilters(categories=("Kitchen",))
    assert services.search_products(query="oak", filters=unticked, limit=12, spell=False).cached
    assert calls == {"signals": 4, "hydrate": 3}


def test_products_changed_since_the_build_are_counted_as_before(settings):
    # A product scraped since the build, found by its words (the snapshot does not hold it: the
    # database counts), and one re-branded since (counted as the full search counted it).
    catalogue(settings)
    query, filters = "navy lamp", SearchFilters(brands=("Acme",))
    found, _ = signals.ranked(query, SearchFilters(), services.CANDIDATE_DEPTH, {})
    Product.objects.filter(pk=found.candidates[0].product_id).update(
        brand="Birch", updated_at=timezone.now()
    )
    ProductFactory(store=Store.objects.first(), title="Navy lamp oak", brand="Dovetail")
    page = assert_same_counts(
        {"query": query, "filters": filters, "sort": "relevance", "offset": 0, "limit": 12}
    )
    assert ("Dovetail", "Dovetail", 1) in page.facets["brand"]


@pytest.mark.parametrize("snapshot", [True, False])
def test_ticking_a_value_keeps_its_facets_counts_as_the_unfiltered_page_showed(
    settings, client, snapshot
):
    # Products sold at several stores (one GTIN) are one result: a chosen facet's counts are
    # over the results the facet-removed page shows, merged, as that page counts them.
    settings.MEEPO_SEARCH_SNAPSHOT = snapshot
    catalogue(settings)
    merged = 0
    for params in searches(60, seed=7):
        query, sort = params["query"], params["sort"]
        for field in CHOSEN.values():
            chosen = getattr(params["filters"], field)
            if not chosen:
                continue
            others = replace(params["filters"], **{field: ()})
            services.clear_caches()
            wide = services.search_products(query=query, filters=others, sort=sort, spell=False)
            if not wide.facets:
                continue
            name = next(n for n, f in CHOSEN.items() if f == field)
            services.clear_caches()
            page = services.search_products(
                query=query, filters=params["filters"], sort=sort, spell=False
            )
            assert page.facets[name] == wide.facets[name], (params, name)
            ranked, _ = signals.ranked(query, others, services.CANDIDATE_DEPTH, {})
            merged += len(ranked.candidates) > len(
                pages.merged_candidates(ranked.candidates, sort)[0]
            )
    assert merged  # some of them merged listings of one product
    # The API shows the page's counts.
    services.clear_caches()
    body = client.get("/api/search", {"q": "oak", "brand": "Birch"}).json()
    services.clear_caches()
    wide = services.search_products(query="oak", spell=False)
    assert body["facets"]["brand"] == [row._asdict() for row in wide.facets["brand"]]
