"""A keyword count asked right after the hits of the same query (search.signals' order) is
that index search's own count: no second search, no query, and the same number as a count on
its own and as the database's, with products changed, added and switched off since the build."""

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Product
from catalog.services import deactivate_missing_products
from search import keyword_engine, selectors
from search.selectors import SearchFilters
from tests.factories import ProductFactory, StoreFactory
from tests.search.test_keyword_engine import publish_with_keywords

pytestmark = pytest.mark.django_db
CASES = [
    ("oak", SearchFilters(), ()),
    ("oak", SearchFilters(), ("chair",)),
    ("oak ta", SearchFilters(), ()),
    ("oak", SearchFilters(brands=("Birch",)), ()),
    ("oak table", SearchFilters(stores=("s1",)), ()),
    ("walnut", SearchFilters(), ()),
]


def catalogue(settings):
    stores = [StoreFactory(slug=f"s{i}") for i in range(2)]
    words = ["table", "chair", "lamp", "shelf"]
    made = [
        ProductFactory(
            store=stores[i % 2],
            title=f"Oak {words[i % 4]} {i}",
            brand="Birch" if i % 3 == 0 else "Acme",
            is_active=i % 7 != 3,
        )
        for i in range(40)
    ]
    publish_with_keywords(settings)
    return stores, made


def change_since_the_build(stores, made):
    made[0].title = "Walnut table"  # leaves "oak"
    made[0].save()
    made[1].title = "Oak chair, walnut legs"  # stays, retitled
    made[1].save()
    made[3].is_active = True  # inactive at the build, back now
    made[3].save()
    ProductFactory(store=stores[1], title="Oak table new", brand="Birch")
    Product.objects.filter(pk=made[5].pk).update(last_seen_at=timezone.now() - timedelta(days=9))
    assert deactivate_missing_products(store=made[5].store, seen_since=timezone.now() - timedelta(days=1))  # fmt: skip


def counts(settings, query, filters, exclude, django_assert_num_queries):
    """(the count right after hits, the count on its own, the database's count)."""
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    selectors.keyword_hits(query=query, filters=filters, limit=3, exclude=exclude)
    with django_assert_num_queries(0):
        reused = selectors.keyword_count(query=query, filters=filters, exclude=exclude)
    alone = selectors.keyword_count(query=query, filters=filters, exclude=exclude)
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "database"
    database = selectors.keyword_count(query=query, filters=filters, exclude=exclude)
    return reused, alone, database


@pytest.mark.parametrize("changed", [False, True])
def test_count_after_hits_is_exact_without_a_query(settings, django_assert_num_queries, changed):
    stores, made = catalogue(settings)
    if changed:
        change_since_the_build(stores, made)
    for query, filters, exclude in CASES:
        reused, alone, database = counts(settings, query, filters, exclude, django_assert_num_queries)  # fmt: skip
        assert reused == alone == database, (query, filters, exclude)
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    assert (
        selectors.keyword_count(query="oak", filters=SearchFilters()) == 34
    )  # 6 off at the build; with changes: -1 retitled, +1 back, +1 new, -1 off


def test_a_count_is_reused_once_only_for_the_same_query_and_soon(settings, monkeypatch):
    catalogue(settings)
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    seen = []
    real = keyword_engine.keyword_delta.changed
    monkeypatch.setattr(
        keyword_engine.keyword_delta, "changed", lambda i: seen.append(1) or real(i)
    )
    selectors.keyword_hits(query="oak", filters=SearchFilters(), limit=3)
    assert selectors.keyword_count(query="oak lamp", filters=SearchFilters()) == 8
    assert len(seen) == 1  # another query: counted afresh
    selectors.keyword_hits(query="oak", filters=SearchFilters(), limit=3)
    assert selectors.keyword_count(query="oak", filters=SearchFilters()) == 34
    assert selectors.keyword_count(query="oak", filters=SearchFilters()) == 34
    assert len(seen) == 2  # the first reused, the second not
    monkeypatch.setattr(keyword_engine, "COUNT_REUSE_SECONDS", -1.0)
    selectors.keyword_hits(query="oak", filters=SearchFilters(), limit=3)
    assert selectors.keyword_count(query="oak", filters=SearchFilters()) == 34
    assert len(seen) == 3  # too late: counted afresh


def test_hits_under_a_filter_the_index_holds_read_only_the_delta(settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    catalogue(settings)
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    for filters, checked in [(SearchFilters(brands=("Birch",)), False), (SearchFilters(in_stock=True), True)]:  # fmt: skip
        with CaptureQueriesContext(connection) as queries:
            found = selectors.keyword_hits(query="oak", filters=filters, limit=50)
        sql = " ".join(q["sql"] for q in queries.captured_queries)
        assert len(queries.captured_queries) == 1
        assert ("p.id IN (" in sql) is checked  # the primary-key live check of the hits
        settings.MEEPO_SEARCH_KEYWORD_ENGINE = "database"
        database = selectors.keyword_hits(query="oak", filters=filters, limit=50)
        assert {pid for pid, _ in found} == {pid for pid, _ in database}
        settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
