"""Hits are hydrated with only the columns a card and the API show (selectors.HIT_PRODUCT_FIELDS):
the results page, its htmx fragment, the API and ?debug=1 render every hit without reading a
deferred column (which would cost one query per hit)."""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import ProductVariant
from search import services
from tests.factories import ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db

# A deferred column read later: Django loads it by primary key, one row at a time.
LAZY = re.compile(r'WHERE "catalog_\w+"\."id" = \d+ LIMIT 21')


@pytest.fixture
def shop():
    home, other = StoreFactory(slug="home"), StoreFactory(slug="other")
    for i in range(30):
        product = ProductFactory(
            store=home,
            title=f"Linen lamp {i}",
            description="A long description " * 50,
            brand="Acme",
            price=Decimal("10") + i,
            price_max=Decimal("99") if i % 4 == 0 else None,
            list_price=Decimal("80") if i % 3 == 0 else None,
            gtin=f"{i:013d}" if i % 2 else "",
        )
        image = ProductImageFactory(product=product)
        if i % 5 == 0:
            ProductVariant.objects.create(
                product=product, external_id=f"v{i}", options={"size": "L"}, image=image
            )
        if product.gtin:
            ProductFactory(store=other, gtin=product.gtin, title=f"Other lamp {i}")


@pytest.mark.parametrize(
    ("url", "params", "headers"),
    [
        ("/search", {"q": "linen lamp"}, {}),
        ("/search", {"q": "linen lamp", "debug": "1", "sort": "price_desc"}, {}),
        ("/search", {"q": "linen lamp", "page": "2"}, {"HTTP_HX_REQUEST": "true"}),
        ("/api/search", {"q": "linen lamp"}, {}),
    ],
)
def test_pages_and_api_read_no_deferred_column(client, shop, url, params, headers):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params, **headers)
    assert response.status_code == 200
    assert b"Linen lamp" in response.content
    lazy = [q["sql"] for q in queries.captured_queries if LAZY.search(q["sql"])]
    assert lazy == []
    assert len(queries.captured_queries) <= 14


def test_hits_are_lean_and_still_complete(shop):
    page = services.search_products(query="linen lamp")
    assert len(page.hits) == 24
    product = page.hits[0].product
    assert {"description", "tags", "field_sources", "created_at"} <= product.get_deferred_fields()
    assert product.store.name
    assert product.title
    assert product.price is not None
    assert product.ready_images[0].asset.thumbnail
