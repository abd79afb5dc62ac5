"""One read of the candidates' rows serves the sort, one result per GTIN and the price range:
the same answers as the three queries they replace, and two queries fewer per page."""

import random
from decimal import Decimal

import pytest

from search import selectors, services
from search.facets import price_range, price_range_of
from search.filters import SearchFilters
from tests.factories import ProductFactory, StoreFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def products():
    rng = random.Random(4)
    stores = [StoreFactory(slug=f"s{i}") for i in range(3)]
    made = []
    for i in range(60):
        made.append(
            ProductFactory(
                store=stores[i % 3],
                title=f"Lamp {i}",
                price=None if i % 11 == 0 else Decimal(rng.randrange(100, 9000)) / 100,
                currency=["EUR", "EUR", "USD", "GBP"][i % 4],
                availability="in_stock" if i % 3 else "out_of_stock",
                is_active=i % 13 != 0,
                gtin=f"{i % 7:013d}" if i % 2 else "",
            )
        )
    return [p.pk for p in made]


FILTERS = [
    SearchFilters(),
    SearchFilters(min_price=Decimal("20")),
    SearchFilters(max_price=Decimal("45.5")),
    SearchFilters(min_price=Decimal("10"), max_price=Decimal("60"), in_stock=True),
    SearchFilters(in_stock=True),
    SearchFilters(max_price=Decimal("0.5")),
]


@pytest.mark.parametrize("filters", FILTERS, ids=repr)
def test_price_range_from_the_rows_equals_the_query(products, filters):
    rng = random.Random(1)
    rows = selectors.candidate_rows(products)
    for size in (0, 1, 5, 20, 60):
        ids = rng.sample(products, size)
        # The candidates of a search have passed its filters: only those are compared.
        passing = set(filters.queryset().filter(pk__in=ids).values_list("pk", flat=True))
        ids = [pk for pk in ids if pk in passing]
        expected = price_range(product_ids=ids, filters=filters) if ids else None
        assert price_range_of(rows, ids, filters) == expected, (size, filters)


def test_rows_answer_like_the_older_selectors(products):
    rows = selectors.candidate_rows(products)
    assert set(rows) == set(products)
    gtins = selectors.product_gtins(products)
    assert gtins == {pk: (r.gtin, r.in_stock, r.price) for pk, r in rows.items() if r.gtin}
    assert all(isinstance(r.price, Decimal) for r in rows.values() if r.price is not None)


def test_a_sorted_text_page_reads_the_candidates_once(products, django_assert_num_queries):
    """With the ranked list cached (the second page view): candidate rows, products with their
    pictures (search.hydration; no variants query: none of them has variants), offers at other
    stores and the two facet queries. 5 queries, where the sort, the GTIN merge and the price
    range used to take three of their own (9), products and pictures two and variants one (7)."""
    services.search_products(query="lamp", sort="price_asc")  # ranks and caches the list
    with django_assert_num_queries(5):
        page = services.search_products(query="lamp", sort="price_asc")
    # A GTIN's result sits where its first listing was sorted, showing its best offer.
    prices = [h.product.price for h in page.hits if h.product.price is not None and not h.offers]
    assert len(prices) > 5
    assert prices == sorted(prices)
    assert page.price_range is not None


def test_a_candidate_copy_is_equal_and_independent():
    from search.ranking import Candidate

    original = Candidate(7, image_id=3, score=0.5, visual_score=0.3, visual_rank=2, exact=True)
    twin = original.copy()
    assert twin == original
    assert twin is not original
    twin.visual_rank = 0
    assert original.visual_rank == 2
