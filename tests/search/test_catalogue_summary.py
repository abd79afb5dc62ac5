"""The whole-catalogue counts written with each index version (search.catalogue_summary): the
home page's browse links and examples, the empty-results examples and a one-facet browse page's
disjunctive counts come from the served version, with no GROUP BY over the catalogue (≈ 4 s of
CPU per request at 1 M products on SQLite); a version without the file still answers from the
database, and both give the same counts."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from search import catalogue_summary, facets, services
from search.filters import SearchFilters
from search.index import get_index
from tests.factories import ProductFactory
from tests.search.test_snapshot_parity import catalogue

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _tiny_model(tiny_clip, settings):
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0
    settings.MEEPO_RELEVANCE_FLOOR = False  # the tiny random CLIP's scores mean nothing


def _grouped(queries) -> list[str]:
    return [q["sql"] for q in queries if "GROUP BY" in q["sql"]]


def test_the_build_writes_the_database_counts(settings):
    catalogue(settings)
    written = json.loads((get_index().path / catalogue_summary.SUMMARY_FILE).read_text())
    services.clear_caches()
    from_db = facets.catalogue_facets_from_db(SearchFilters())
    assert written["facets"] == {name: [list(r) for r in rows] for name, rows in from_db.items()}
    assert written["examples"] == facets.examples_from_db()
    assert written["examples"]  # the catalogue has categories and brands


def test_home_page_counts_come_from_the_served_version(settings, client):
    catalogue(settings)
    services.clear_caches()
    with CaptureQueriesContext(connection) as queries:
        examples = facets.example_queries()
        links = facets.browse_links()
        counts = facets.facet_counts(product_ids=[], filters=SearchFilters())
        assert client.get("/").status_code == 200
    assert _grouped(queries.captured_queries) == []
    summary = catalogue_summary.served()
    assert examples == summary["examples"]
    assert links["category"] == summary["facets"]["category"][:12]
    assert counts == summary["facets"]


def test_callers_cannot_change_the_served_counts(settings):
    catalogue(settings)
    services.clear_caches()
    counts = facets.facet_counts(product_ids=[], filters=SearchFilters())
    counts["brand"].clear()
    facets.example_queries().clear()
    again = facets.facet_counts(product_ids=[], filters=SearchFilters())
    assert again["brand"]
    assert facets.example_queries()


def test_one_category_browse_page_groups_only_its_own_rows(settings, client):
    catalogue(settings)
    services.clear_caches()
    category = catalogue_summary.served()["facets"]["category"][0].value
    with CaptureQueriesContext(connection) as queries:
        page = services.search_products(query="", filters=SearchFilters(categories=(category,)))
    # Its category counts are the unfiltered catalogue's: from the version, not a GROUP BY
    # over every product; every GROUP BY left is over the category's rows only.
    assert page.facets["category"] == catalogue_summary.served()["facets"]["category"]
    grouped = _grouped(queries.captured_queries)
    assert grouped
    assert all(f"IN ('{category}')" in sql for sql in grouped)


def test_without_the_file_the_database_answers_the_same(settings):
    catalogue(settings)
    services.clear_caches()
    served = {name: list(rows) for name, rows in catalogue_summary.served()["facets"].items()}
    examples = list(catalogue_summary.served()["examples"])
    (get_index().path / catalogue_summary.SUMMARY_FILE).unlink()
    services.clear_caches()
    assert catalogue_summary.served() is None
    assert facets.facet_counts(product_ids=[], filters=SearchFilters()) == served
    assert facets.example_queries() == examples


@pytest.mark.parametrize("text", ["{not json", json.dumps({"format": 999, "facets": {}, "examples": []})])  # fmt: skip
def test_a_damaged_or_newer_file_falls_back_to_the_database(settings, text):
    catalogue(settings)
    (get_index().path / catalogue_summary.SUMMARY_FILE).write_text(text)
    services.clear_caches()
    assert catalogue_summary.served() is None
    assert facets.example_queries() == facets.examples_from_db()


def test_counts_are_the_builds_until_the_next_build(settings):
    catalogue(settings)
    services.clear_caches()
    before = facets.facet_counts(product_ids=[], filters=SearchFilters())["category"]
    ProductFactory.create_batch(3, category="Brand new category")
    # As of the served version, like its vectors; the next build counts the new products.
    assert facets.facet_counts(product_ids=[], filters=SearchFilters())["category"] == before
    assert "Brand new category" in [
        r.value for r in facets.catalogue_facets_from_db(SearchFilters())["category"]
    ]


def test_without_a_summary_one_thread_counts_and_the_others_do_not_wait(monkeypatch):
    """A version written before the summary: the first request counts in SQL; requests arriving
    meanwhile get no examples / browse links at once instead of running the same whole-catalogue
    GROUP BYs side by side (seconds each at 1 M: together they went past 10 s)."""
    import threading

    services.clear_caches()
    monkeypatch.setattr(catalogue_summary, "served", lambda: None)
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow_count(limit=facets.EXAMPLES):
        calls.append(limit)
        started.set()
        release.wait(10)
        return ["mugs"]

    monkeypatch.setattr(facets, "examples_from_db", slow_count)
    first: list = []
    counting = threading.Thread(target=lambda: first.append(facets.example_queries()))
    counting.start()
    assert started.wait(10)
    assert facets.example_queries() == []  # at once, not after the count
    release.set()
    counting.join(10)
    assert first == [["mugs"]]
    assert facets.example_queries() == ["mugs"]  # cached now
    assert calls == [facets.EXAMPLES]


def test_examples_are_the_top_categories_then_brands_of_active_products():
    """What example_queries lists, pinned on a catalogue whose counts are known: half the
    most common categories, then the most common brands (a brand equal to a shown category
    once), then more categories; lower-cased; inactive products not counted."""
    services.clear_caches()
    for category, brand, n in [("Mugs", "Acme", 3), ("Plates", "Acme", 2), ("Cups", "Zed", 1)]:
        ProductFactory.create_batch(n, category=category, brand=brand)
    ProductFactory.create_batch(2, category="Plates", brand="Plates")
    ProductFactory.create_batch(9, category="Gone", brand="Gone", is_active=False)
    assert facets.examples_from_db(limit=4) == ["plates", "mugs", "acme", "zed"]
    assert facets.examples_from_db(limit=6) == ["plates", "mugs", "cups", "acme", "zed"]
