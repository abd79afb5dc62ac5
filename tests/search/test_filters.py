"""SearchFilters has two renderings of one rule, `sql()` (raw keyword and id-set queries) and
`queryset()` (facets, browsing): for every kind of filter, alone and combined, both select the
same products, including prices on a bound, three-decimal prices and products without a price."""

import itertools
from decimal import Decimal

import pytest
from django.db import connection

from catalog.models import Product, ProductAttributes
from search.filters import SearchFilters
from tests.factories import ProductFactory, StoreFactory

pytestmark = pytest.mark.django_db

PRICES = [None, Decimal("9.99"), Decimal("10"), Decimal("10.005"), Decimal("25.5"), Decimal("99")]


def by_sql(filters: SearchFilters) -> set[int]:
    where, params = filters.sql("p")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT p.id FROM catalog_product p WHERE {where}", params)
        return {row[0] for row in cursor.fetchall()}


def by_orm(filters: SearchFilters) -> set[int]:
    return set(filters.queryset().values_list("pk", flat=True))


@pytest.fixture
def catalogue():
    stores = [StoreFactory(slug="north"), StoreFactory(slug="south")]
    for i, (price, brand, category) in enumerate(
        itertools.product(PRICES, ["Acme", "Birch", ""], ["Kitchen", "Garden"])
    ):
        product = ProductFactory(
            store=stores[i % 2],
            price=price,
            brand=brand,
            category=category,
            availability="in_stock" if i % 3 else "out_of_stock",
            is_active=i % 7 != 0,
        )
        if i % 4:
            ProductAttributes.objects.create(
                product=product, model_name="m", key=str(i), colour=["red", "navy", ""][i % 3]
            )
    return Product.objects.count()


CASES = [
    SearchFilters(),
    SearchFilters(stores=("north",)),
    SearchFilters(stores=("north", "nowhere")),
    SearchFilters(brands=("Acme",)),
    SearchFilters(brands=("Acme", "Birch"), categories=("Garden",)),
    SearchFilters(min_price=Decimal("10")),
    SearchFilters(max_price=Decimal("10")),
    SearchFilters(min_price=Decimal("10.005"), max_price=Decimal("10.005")),
    SearchFilters(min_price=Decimal("9.995"), max_price=Decimal("25.50")),
    SearchFilters(max_price=Decimal("0")),
    SearchFilters(in_stock=True),
    SearchFilters(attributes=(("colour", ("red",)),)),
    SearchFilters(attributes=(("colour", ("red", "navy")), ("pattern", ()))),
    SearchFilters(
        stores=("north",),
        brands=("Birch",),
        min_price=Decimal("10"),
        in_stock=True,
    ),
    SearchFilters(
        stores=("north",), categories=("Kitchen",), attributes=(("colour", ("navy", "red")),)
    ),
]


@pytest.mark.parametrize("filters", CASES, ids=repr)
def test_sql_and_queryset_select_the_same_products(catalogue, filters):
    assert catalogue == len(PRICES) * 6
    selected = by_orm(filters)
    assert by_sql(filters) == selected
    if filters.is_empty:
        assert selected == set(Product.objects.active().values_list("pk", flat=True))


def test_every_case_selects_something_and_leaves_something_out(catalogue):
    everything = by_orm(SearchFilters())
    narrowing = [f for f in CASES if not f.is_empty and f != SearchFilters(max_price=Decimal("0"))]
    for filters in narrowing:
        assert 0 < len(by_orm(filters)) < len(everything), filters


def test_only_price_and_stock_are_not_structural():
    assert SearchFilters(
        stores=("a",), brands=("b",), attributes=(("colour", ("red",)),)
    ).is_structural
    assert not SearchFilters(min_price=Decimal("1")).is_structural
    assert not SearchFilters(max_price=Decimal("1")).is_structural
    assert not SearchFilters(in_stock=True).is_structural
