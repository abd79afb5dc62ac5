"""Search pages through Django's test client: status codes, parsed HTML, query counts."""

import pytest
from bs4 import BeautifulSoup

from catalog.models import Product
from tests.factories import ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db


def soup(response):
    return BeautifulSoup(response.content, "html.parser")


@pytest.fixture
def catalogue():
    shop = StoreFactory(name="Cosy Home", slug="cosy")
    other = StoreFactory(name="Kitchen Co", slug="kitchen")
    pillow = ProductFactory(
        store=shop, title="Fluffy striped salmon pillow", brand="Dreamy", category="Bedroom"
    )
    fork = ProductFactory(
        store=other,
        title="Steel dinner fork",
        brand="Forged",
        category="Kitchen",
        external_id="SKU-FORK-1",
    )
    spoon = ProductFactory(
        store=other,
        title="Steel soup spoon",
        brand="Forged",
        category="Kitchen",
        availability=Product.Availability.OUT_OF_STOCK,
    )
    for product in (pillow, fork, spoon):
        ProductImageFactory(product=product)
    return {"pillow": pillow, "fork": fork, "spoon": spoon}


def test_home_has_labelled_search_box_and_examples(client):
    ProductFactory(title="Brass lamp", category="Lamps", brand="Lumo")
    response = client.get("/")
    assert response.status_code == 200
    page = soup(response)
    box = page.select_one("input#q")
    assert page.select_one('label[for="q"]') is not None
    assert box["name"] == "q"
    # Examples come from the catalogue: its top categories and brands.
    examples = [a.get_text() for a in page.select('nav[aria-label="Example searches"] a')]
    assert examples == ["lamps", "lumo"]
    # Browse without typing: categories and stores link to filtered results.
    assert page.select_one('nav[aria-labelledby="browse-categories"] a')["href"] == (
        "/search?category=Lamps"
    )
    assert page.select_one('nav[aria-labelledby="browse-stores"] a')["href"].startswith(
        "/search?store="
    )
    assert page.select_one('a[href="/search?q=mug%20-ceramic"]') is not None  # the minus-word tip


def test_results_find_keyword_match_and_explain_it(client, catalogue):
    response = client.get("/search", {"q": "pillow"})
    assert response.status_code == 200
    page = soup(response)
    cards = page.select("#result-list article")
    assert [c["data-product-id"] for c in cards] == [str(catalogue["pillow"].pk)]
    assert cards[0].select_one('[data-match="words"]').get_text() == "Matches your words"
    assert cards[0].select_one("[data-signal]") is None  # scores and signals only with ?debug=1
    assert "Server-Timing" in response
    assert "HX-Request" in response["Vary"]


def test_results_without_index_say_visual_search_is_not_ready(client, catalogue):
    page = soup(client.get("/search", {"q": "fork"}))
    assert page.select_one('[data-state="not-ready"]') is not None
    assert page.select("#result-list article")


def test_exact_sku_ranks_first(client, catalogue):
    page = soup(client.get("/search", {"q": "SKU-FORK-1", "debug": "1"}))
    first = page.select_one("#result-list article")
    assert first["data-product-id"] == str(catalogue["fork"].pk)
    assert first.select_one('[data-signal="exact"]') is not None


def test_filters_apply_and_facets_count_current_query(client, catalogue):
    response = client.get("/search", {"q": "steel", "in_stock": "on"})
    page = soup(response)
    ids = [c["data-product-id"] for c in page.select("#result-list article")]
    assert ids == [str(catalogue["fork"].pk)]
    brand_box = page.select_one('[data-facet="brand"] input[value="Forged"]')
    assert brand_box is not None


def test_store_filter_checkbox_is_checked_and_filters(client, catalogue):
    page = soup(client.get("/search", {"q": "steel", "store": "cosy"}))
    assert page.select_one('[data-state="no-results"]') is not None
    assert page.select_one('[data-facet="store"] input[value="cosy"]').has_attr("checked")


@pytest.mark.parametrize(
    "query",
    [
        "x" * 10_000,
        "🛋️🍴 pillow 😀",
        "وسادة مخططة",
        "'; DROP TABLE catalog_product; --",
        '"unbalanced AND OR NEAR( title: * ^',
        "<script>alert(1)</script>",
        "   ",
    ],
)
def test_hostile_queries_render_normal_escaped_page(client, catalogue, query):
    response = client.get("/search", {"q": query})
    assert response.status_code == 200
    assert b"<script>alert(1)</script>" not in response.content
    assert Product.objects.count() == 3


def test_bad_price_is_left_out_and_noted_next_to_its_field(client, catalogue):
    response = client.get("/search", {"q": "fork", "min_price": "cheap", "page": "500"})
    assert response.status_code == 200
    page = soup(response)
    assert page.select("#result-list article")  # it still searched
    assert page.select_one("#f-min-price")["aria-invalid"] == "true"
    assert "not a price" in page.select_one('[data-note="min_price"]').text
    assert "no page" in page.select_one('[data-note="page"]').text


def test_minimum_above_maximum_is_swapped(client, catalogue):
    page = soup(client.get("/search", {"q": "steel", "min_price": "80", "max_price": "1"}))
    assert page.select_one("#f-max-price")["aria-invalid"] == "true"
    chips = [a.get_text(" ", strip=True) for a in page.select("[data-remove-filter]")]
    assert chips[0].startswith("From 1")
    assert chips[1].startswith("Up to 80")


def test_htmx_request_gets_fragment_with_oob_facets(client, catalogue):
    response = client.get("/search", {"q": "steel"}, headers={"HX-Request": "true"})
    page = soup(response)
    assert page.select_one("html") is None
    assert page.select_one("section#results") is not None
    assert page.select_one("aside#facets")["hx-swap-oob"] == "true"


def test_history_restore_gets_full_page(client, catalogue):
    response = client.get(
        "/search",
        {"q": "steel"},
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert soup(response).select_one("html") is not None


def test_more_link_pages_through_results_without_repeats(client):
    store = StoreFactory()
    for n in range(30):
        ProductImageFactory(product=ProductFactory(store=store, title=f"Blue mug {n}"))
    first = soup(client.get("/search", {"q": "mug"}))
    more = first.select_one("#more a")
    assert more is not None
    assert "page=2" in more["href"]
    second = soup(client.get("/search" + more["href"]))
    ids1 = {c["data-product-id"] for c in first.select("#result-list article")}
    ids2 = {c["data-product-id"] for c in second.select("#result-list article")}
    assert len(ids1) == 24
    assert len(ids2) == 6
    assert not ids1 & ids2
    fragment = client.get(
        "/search" + more["href"] + "&fragment=more", headers={"HX-Request": "true"}
    ).content.decode()
    assert fragment.count("<article") == 6
    assert 'hx-swap-oob="beforeend:#result-list"' in fragment


def _prices(response):
    return [
        card.select_one("[data-price]")["data-price"]
        for card in soup(response).select("#result-list article")
    ]


def test_sort_by_price_reorders_the_matches_only_and_pages_stay_consistent(client):
    from datetime import timedelta

    from django.utils import timezone

    store = StoreFactory()
    now = timezone.now()
    for n, price in enumerate([30, 10, None, 20, 50, 40]):
        product = ProductFactory(
            store=store, title=f"Blue mug {n}", price=price, first_seen_at=now - timedelta(days=n)
        )
        ProductImageFactory(product=product)
    ProductImageFactory(product=ProductFactory(store=store, title="Cheap plate", price=1))
    cheapest = client.get("/search", {"q": "mug", "sort": "price_asc"})
    assert _prices(cheapest) == ["10.00", "20.00", "30.00", "40.00", "50.00", ""]  # no plate
    select = soup(cheapest).select_one("select#sort")
    assert select["name"] == "sort"
    assert select.select_one("option[selected]")["value"] == "price_asc"
    dearest = client.get("/search", {"q": "mug", "sort": "price_desc"})
    assert _prices(dearest) == ["50.00", "40.00", "30.00", "20.00", "10.00", ""]
    newest = soup(client.get("/search", {"q": "mug", "sort": "newest"}))
    titles = [a.get_text(strip=True) for a in newest.select("#result-list article h3")]
    assert titles == [f"Blue mug {n}" for n in range(6)]
    # Two pages of a sorted list are one list cut in two: no repeats, no gaps.
    page1 = _prices(client.get("/search", {"q": "mug", "sort": "price_asc", "limit": 4}))
    page2 = _prices(client.get("/search", {"q": "mug", "sort": "price_asc", "limit": 4, "page": 2}))
    assert page1 + page2 == ["10.00", "20.00", "30.00", "40.00", "50.00", ""]
    # Browsing by a filter with no query sorts in SQL.
    browse = client.get("/search", {"store": store.slug, "sort": "price_asc"})
    assert _prices(browse)[:3] == ["1.00", "10.00", "20.00"]
    assert (
        client.get("/api/search", {"q": "mug", "sort": "price_desc"}).json()["sort"] == "price_desc"
    )


def test_results_page_query_count_is_constant(client, django_assert_max_num_queries):
    store = StoreFactory()
    for n in range(40):
        ProductImageFactory(product=ProductFactory(store=store, title=f"Green lamp {n}"))
    with django_assert_max_num_queries(12):
        response = client.get("/search", {"q": "lamp"})
    assert len(soup(response).select("#result-list article")) == 24


def test_card_has_placeholder_and_fixed_box(client, catalogue):
    image = catalogue["pillow"].images.get()
    image.asset.placeholder = "data:image/jpeg;base64,AAAA"
    image.asset.save()
    card = soup(client.get("/search", {"q": "pillow"})).select_one("#result-list article")
    figure = card.select_one("figure")
    assert "aspect-square" in figure["class"]
    placeholder, thumb = figure.select("img")
    assert placeholder["src"].startswith("data:image/")
    assert thumb["alt"] == ""  # the title link beside it names the product (no double reading)
    assert thumb["loading"] == "lazy"


def test_product_page_shows_details_and_similar_fallback(client, catalogue):
    response = client.get(f"/products/{catalogue['fork'].pk}")
    assert response.status_code == 200
    page = soup(response)
    assert page.select_one("h1").text == "Steel dinner fork"
    assert page.select_one(f'a[href="{catalogue["fork"].url}"]') is not None
    similar = page.select_one("#similar")
    assert similar.select_one('[data-state="not-ready"]') is not None
    assert [c["data-product-id"] for c in similar.select("article")] == [str(catalogue["spoon"].pk)]


def test_unknown_product_is_404_page(client):
    response = client.get("/products/999999")
    assert response.status_code == 404
    assert b"find that page" in response.content


def test_empty_query_shows_examples(client):
    page = soup(client.get("/search", {"q": ""}))
    assert page.select_one('[data-state="empty"]') is not None


def test_browse_by_filter_without_query(client, catalogue):
    page = soup(client.get("/search", {"brand": "Forged"}))
    ids = {c["data-product-id"] for c in page.select("#result-list article")}
    assert ids == {str(catalogue["fork"].pk), str(catalogue["spoon"].pk)}


def test_500_page_renders_without_request_context():
    from django.template.loader import render_to_string

    html = render_to_string("500.html")
    assert "Something went wrong" in html
