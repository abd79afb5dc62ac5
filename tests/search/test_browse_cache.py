"""A browse page's aggregates (facets, total, price range: GROUP BYs over every matching
product) are kept per filter combination for a minute (search.browse): the next page, another
sort or the "more" fragment of the same browse read only their own rows; the products listed
are always read live."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from search import browse, services
from search.caching import TTLCache
from search.filters import SearchFilters
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db
CUPS = SearchFilters(categories=("Cups",))


@pytest.fixture
def shelf():
    services.clear_caches()
    cups = [
        ProductFactory(category="Cups", brand=f"B{i % 3}", price=Decimal(10 + i)) for i in range(30)
    ]
    ProductFactory.create_batch(5, category="Plates", price=Decimal(5))
    yield cups
    services.clear_caches()


def _page(offset=0, sort="relevance"):
    with CaptureQueriesContext(connection) as queries:
        page = services.search_products(query="", filters=CUPS, offset=offset, limit=12, sort=sort)
    return page, [q["sql"] for q in queries.captured_queries if "GROUP BY" in q["sql"]]


def test_the_next_page_and_another_sort_reuse_the_aggregates(shelf):
    first, grouped = _page()
    assert grouped  # the first view of this browse counts
    second, grouped_again = _page(offset=12)
    by_price, grouped_sorted = _page(sort="price_asc")
    assert grouped_again == []
    assert grouped_sorted == []
    assert second.facets == first.facets
    assert by_price.facets == first.facets
    assert second.total == first.total == 30
    assert by_price.price_range == first.price_range
    assert {h.product.pk for h in first.hits}.isdisjoint({h.product.pk for h in second.hits})


def test_listed_products_are_live_while_counts_may_lag_a_minute(shelf):
    first, _ = _page()
    gone = first.hits[0].product
    gone.is_active = False
    gone.save()
    again, _ = _page()
    assert gone.pk not in [h.product.pk for h in again.hits]
    assert again.total == 30  # as counted a moment ago (BROWSE_CACHE_SECONDS)
    services.clear_caches()
    assert _page()[0].total == 29


def test_the_aggregates_expire_after_a_minute(shelf, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(browse, "_aggregates", TTLCache(8, browse.BROWSE_CACHE_SECONDS, timer=lambda: now[0]))  # fmt: skip
    _page()
    now[0] = browse.BROWSE_CACHE_SECONDS - 1
    assert _page(offset=12)[1] == []
    now[0] = browse.BROWSE_CACHE_SECONDS + 1
    assert _page(offset=12)[1]  # counted again


def test_callers_cannot_change_the_cached_facets(shelf):
    first, _ = _page()
    first.facets["brand"].clear()
    assert _page(offset=12)[0].facets["brand"]
