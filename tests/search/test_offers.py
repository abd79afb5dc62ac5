"""The same product (same GTIN) at several stores: one result with "also at N stores, from €X",
the other stores' offers on the product page (cheapest first) and in the API."""

from decimal import Decimal

import pytest
from bs4 import BeautifulSoup

from catalog.models import Product
from search import services
from tests.factories import ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db
GTIN = "4006381333931"


def soup(response):
    return BeautifulSoup(response.content, "html.parser")


@pytest.fixture
def kettle():
    """One kettle at three stores, a different kettle, and a sold-out listing without price."""
    stores = [StoreFactory(name=f"Shop {c}", slug=f"shop-{c}") for c in "abcd"]
    offers = {}
    for store, price, stock in zip(
        stores[:3],
        ("39.00", "35.50", "42.00"),
        ("in_stock", "out_of_stock", "in_stock"),
        strict=True,
    ):
        offers[store.slug] = ProductFactory(
            store=store,
            title="Copper kettle",
            gtin=GTIN,
            price=Decimal(price),
            availability=stock,
        )
        ProductImageFactory(product=offers[store.slug])
    offers["gone"] = ProductFactory(
        store=stores[3], title="Copper kettle", gtin=GTIN, is_active=False
    )
    offers["other"] = ProductFactory(store=stores[0], title="Copper kettle XL", gtin="96385074")
    return offers


def test_results_show_one_card_per_gtin_with_the_other_stores(client, kettle):
    cards = soup(client.get("/search", {"q": "copper kettle"})).select("#result-list article")
    ids = [int(c["data-product-id"]) for c in cards]
    kettles = [pk for pk in ids if Product.objects.get(pk=pk).gtin == GTIN]
    assert len(kettles) == 1
    assert kettle["other"].pk in ids
    # The best offer is shown: in stock first (shop-b is cheaper but sold out), then cheapest.
    assert kettles == [kettle["shop-a"].pk]
    card = next(c for c in cards if int(c["data-product-id"]) == kettles[0])
    offers = card.select_one("[data-offers]")
    assert offers["data-offers"] == "2"
    # "From" the cheapest other store that has it in stock (shop-c), not the sold-out one.
    assert offers.get_text(" ", strip=True) == "also at 2 stores, from €42.00"
    other_card = next(c for c in cards if int(c["data-product-id"]) == kettle["other"].pk)
    assert other_card.select_one("[data-offers]") is None


def test_product_page_lists_other_stores_cheapest_first(client, kettle):
    page = soup(client.get(f"/products/{kettle['shop-c'].pk}"))
    rows = page.select("[data-offers] li")
    assert [r["data-offer-store"] for r in rows] == ["shop-b", "shop-a"]  # 35.50, then 39.00
    cheapest = rows[0]
    assert cheapest.select_one("[data-price-now]").get_text() == "€35.50"
    assert "Out of stock" in cheapest.get_text()
    links = [a["href"] for a in cheapest.select("a")]
    assert links == [f"/products/{kettle['shop-b'].pk}", kettle["shop-b"].url]


def test_product_without_gtin_has_no_offers_section(client):
    product = ProductFactory(title="Unique vase")
    assert soup(client.get(f"/products/{product.pk}")).select_one("[data-offers]") is None


def test_offers_in_another_currency_count_but_set_no_from_price(client, kettle):
    Product.objects.exclude(pk=kettle["shop-a"].pk).filter(gtin=GTIN).update(currency="USD")
    card = soup(client.get("/search", {"q": "copper kettle", "store": "shop-a"})).select_one(
        f'article[data-product-id="{kettle["shop-a"].pk}"]'
    )
    assert card.select_one("[data-offers]").get_text(" ", strip=True) == "also at 2 stores"


def test_api_lists_offers_cheapest_first(client, kettle):
    results = client.get("/api/search", {"q": "copper kettle", "store": "shop-c"}).json()["results"]
    hit = next(r for r in results if r["id"] == kettle["shop-c"].pk)
    assert hit["gtin"] == GTIN
    assert [(o["store"]["slug"], o["price"], o["availability"]) for o in hit["offers"]] == [
        ("shop-b", "35.50", "out_of_stock"),
        ("shop-a", "39.00", "in_stock"),
    ]
    assert hit["offers"][0]["url"] == kettle["shop-b"].url
    assert hit["offers"][0]["page"].endswith(f"/products/{kettle['shop-b'].pk}")


def test_results_with_offers_and_variants_keep_a_constant_query_count(
    client, kettle, django_assert_max_num_queries
):
    store = StoreFactory()
    for n in range(30):
        ProductImageFactory(
            product=ProductFactory(store=store, title=f"Copper kettle {n}", gtin=f"{n:08d}")
        )
    with django_assert_max_num_queries(12):
        response = client.get("/search", {"q": "copper kettle"})
    assert len(soup(response).select("#result-list article")) == 24


def test_similar_products_leave_out_the_same_product_at_other_stores(kettle):
    # No index: look-alikes fall back to products sharing words, as on the product page.
    page = services.find_similar_products(product=kettle["shop-a"], fallback_to_keywords=True)
    ids = [h.product.pk for h in page.hits]
    assert kettle["other"].pk in ids
    assert not {kettle["shop-b"].pk, kettle["shop-c"].pk} & set(ids)


def test_an_exact_match_on_one_stores_listing_stays_that_listing(client, kettle):
    Product.objects.filter(pk=kettle["shop-c"].pk).update(sku="KET-C")
    hits = services.search_products(query="KET-C").hits
    assert hits[0].product == kettle["shop-c"]
    assert [o.pk for o in hits[0].offers] == [kettle["shop-b"].pk, kettle["shop-a"].pk]
