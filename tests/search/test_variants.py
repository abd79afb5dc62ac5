"""Variants, sale prices and identifiers in search: exact identifier lookups, variant-aware
cards (a visual match on a variant's picture shows that variant), the product page, the API."""

from decimal import Decimal

import numpy as np
import pytest
from bs4 import BeautifulSoup
from django.conf import settings
from django.utils import timezone

from catalog import services as catalog_services
from catalog.models import Product, ProductImage
from pipeline.indexing import build_index
from search import services
from search.index import reset_index_cache
from search.models import Embedding
from search.selectors import gtin_forms
from tests.factories import ImageAssetFactory, ProductFactory, StoreFactory

pytestmark = pytest.mark.django_db
DIM = 16
RED = "https://cdn.example/shirt-red.jpg"
BLUE = "https://cdn.example/shirt-blue.jpg"


def soup(response):
    return BeautifulSoup(response.content, "html.parser")


def axis(i):
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    return v


def _embed(image, vector):
    image.asset = ImageAssetFactory()
    image.fetch_status = ProductImage.FetchStatus.OK
    image.save()
    Embedding.objects.create(
        asset=image.asset,
        model_name=settings.MEEPO_CLIP_MODEL,
        dim=DIM,
        vector=(vector / np.linalg.norm(vector)).astype("<f4").tobytes(),
    )


def _shirt(store, **kw):
    """A shirt in two colours, written through the pipeline's own upsert."""
    variants = [
        catalog_services.VariantData(
            external_id="101",
            title="Red / M",
            options={"Colour": "Red", "Size": "M"},
            sku="SHIRT-RED-M",
            gtin="4006381333948",
            price=Decimal("10.00"),
            list_price=Decimal("14.00"),
            availability="out_of_stock",
            image_url=RED,
            url="https://shop.example/products/shirt?variant=101",
        ),
        catalog_services.VariantData(
            external_id="102",
            title="Blue / M",
            options={"Colour": "Blue", "Size": "M"},
            sku="SHIRT-BLUE-M",
            price=Decimal("15.00"),
            availability="in_stock",
            image_url=BLUE,
            url="https://shop.example/products/shirt?variant=102",
        ),
    ]
    data = {
        "external_id": "shirt",
        "url": "https://shop.example/products/shirt",
        "title": "Linen shirt",
        "brand": "Nordhus",
        "price": Decimal("10.00"),
        "currency": "EUR",
        "image_urls": [RED, BLUE],
        "sku": "SHIRT",
        "gtin": "0012345678905",
        "mpn": "LS-100",
        "variants": variants,
    } | kw
    catalog_services.upsert_products(
        store=store, items=[catalog_services.ProductData(**data)], seen_at=timezone.now()
    )
    return Product.objects.get(store=store, external_id="shirt")


@pytest.fixture
def shirt():
    store = StoreFactory(name="Nordic Wear", slug="nordic")
    product = _shirt(store)
    for image, vector in zip(product.images.order_by("position"), (axis(3), axis(0)), strict=True):
        _embed(image, vector)
    return product


def _publish():
    assert build_index(force=True).status == "published"
    reset_index_cache()


def _query_product(vector):
    query = ProductFactory(title="Query lamp")
    image = ProductImage.objects.create(product=query, source_url="https://cdn.example/q.jpg")
    _embed(image, vector)
    return query


def test_gtin_forms_match_how_gtins_are_stored():
    assert "0012345678905" in gtin_forms("012345678905")  # UPC-A typed as printed
    assert "0012345678905" in gtin_forms("0 12345 67890-5")
    assert "4006381333931" in gtin_forms("04006381333931")  # GTIN-14 with a leading zero
    assert gtin_forms("96385074") == ["00000096385074", "0000096385074", "96385074"]
    assert gtin_forms("SKU-1") == gtin_forms("1234567") == []


@pytest.mark.parametrize(
    "query", ["SHIRT", "shirt-blue-m", "LS-100", "012345678905", "0012345678905", "4006381333948"]
)
def test_exact_identifier_query_finds_the_product_first(shirt, query):
    # A product whose text mentions the identifier many times would win on keywords alone.
    ProductFactory(title="Shirt shirt shirt", external_id="other")
    page = services.search_products(query=query)
    assert page.hits[0].product == shirt
    assert page.hits[0].exact


def test_visual_hit_on_a_variants_picture_is_that_variant(shirt):
    query = _query_product(axis(0))  # looks like the blue shirt
    _publish()
    hit = next(h for h in services.find_similar_products(product=query).hits if h.product == shirt)
    assert hit.image.source_url == BLUE
    assert hit.variant.external_id == "102"
    assert [v.external_id for v in hit.variants] == ["101", "102"]


def test_card_of_a_variant_match_shows_its_options_price_stock_and_links_to_it(client, shirt):
    query = _query_product(axis(3))  # looks like the red shirt
    _publish()
    page = soup(client.get(f"/products/{query.pk}"))
    card = page.select_one(f'#similar article[data-product-id="{shirt.pk}"]')
    assert card.select_one("[data-variant]").get_text(strip=True) == "Red / M"
    assert card.select_one("h3 a")["href"] == f"/products/{shirt.pk}?variant=101"
    price = card.select_one("[data-price]")
    assert price.select_one("[data-price-now]").get_text() == "€10.00"
    # On sale: the regular price struck through, read out as "was".
    assert price.select_one("del").get_text(" ", strip=True) == "was €14.00"
    assert "Out of stock" in card.get_text()  # the red one is sold out; the blue one is not
    # The card's title link names it; the picture beside it is decorative (issue 11: alt="").
    assert card.select_one("img.result-thumb")["alt"] == ""


def test_keyword_card_shows_the_price_range_and_the_products_stock(client, shirt):
    card = soup(client.get("/search", {"q": "linen"})).select_one("#result-list article")
    assert card.select_one("[data-variant]") is None
    assert card.select_one("[data-price-now]").get_text() == "€10.00\N{EN DASH}€15.00"
    assert card.select_one("[data-price]")["data-price"] == "10.00"
    assert card.select_one("del").get_text(" ", strip=True) == "was €14.00"
    assert "In stock" in card.get_text()  # some variant is
    assert card.select_one("h3 a")["href"] == f"/products/{shirt.pk}"


def test_product_page_shows_identifiers_and_variants(client, shirt):
    page = soup(client.get(f"/products/{shirt.pk}"))
    ids = page.select_one("[data-identifiers]")
    assert ids.select_one("[data-sku]").get_text() == "SHIRT"
    assert ids.select_one("[data-gtin]").get_text() == "0012345678905"
    assert ids.select_one("[data-mpn]").get_text() == "LS-100"
    assert "Nordhus" in ids.get_text()
    rows = page.select("[data-variants] tbody tr")
    assert [r["data-variant-id"] for r in rows] == ["101", "102"]
    assert "Out of stock" in rows[0].get_text()
    assert "In stock" in rows[1].get_text()
    assert (
        page.select_one("a.btn-primary[rel~=external]")["href"]
        == "https://shop.example/products/shirt"
    )


def test_product_page_for_a_variant_shows_its_price_identifiers_picture_and_link(client, shirt):
    page = soup(client.get(f"/products/{shirt.pk}", {"variant": "102"}))
    assert page.select_one("h1 ~ [data-variant]").get_text() == "Blue / M"
    assert page.select_one("[data-price-now]").get_text() == "€15.00"
    assert page.select_one("[data-sku]").get_text() == "SHIRT-BLUE-M"
    blue = shirt.images.get(source_url=BLUE)
    assert page.select_one("figure img[width]")["src"] == blue.asset.thumbnail.url
    assert page.select_one("a.btn-primary[rel~=external]")["href"].endswith("?variant=102")
    assert page.select_one('tr[aria-current="true"]')["data-variant-id"] == "102"


def test_unknown_variant_parameter_shows_the_product(client, shirt):
    response = client.get(f"/products/{shirt.pk}", {"variant": "nope"})
    assert response.status_code == 200
    assert soup(response).select_one("h1 ~ [data-variant]") is None


def test_api_exposes_identifiers_range_and_variants(client, shirt):
    result = client.get("/api/search", {"q": "linen"}).json()["results"][0]
    assert (result["sku"], result["gtin"], result["mpn"]) == ("SHIRT", "0012345678905", "LS-100")
    assert (result["price"], result["price_max"], result["list_price"]) == (
        "10.00",
        "15.00",
        "14.00",
    )
    assert result["variant"] is None
    red, blue = result["variants"]
    assert red == {
        "id": "101",
        "title": "Red / M",
        "options": {"Colour": "Red", "Size": "M"},
        "sku": "SHIRT-RED-M",
        "gtin": "4006381333948",
        "mpn": "",
        "price": "10.00",
        "list_price": "14.00",
        "availability": "out_of_stock",
        "url": "https://shop.example/products/shirt?variant=101",
        "image_id": shirt.images.get(source_url=RED).pk,
    }
    assert blue["availability"] == "in_stock"
    assert result["offers"] == []


def test_api_names_the_matched_variant(client, shirt):
    query = _query_product(axis(0))
    _publish()
    results = client.get(f"/api/products/{query.pk}/similar").json()["results"]
    hit = next(r for r in results if r["id"] == shirt.pk)
    assert hit["variant"]["id"] == "102"
    assert hit["variant"]["price"] == "15.00"


@pytest.mark.parametrize(
    ("currency", "price", "shown", "plain"),
    [
        ("KWD", "12.345", "KWD12.345", "12.345"),
        ("JPY", "2490", "¥2,490", "2490"),
        ("EUR", "1234.5", "€1,234.50", "1234.50"),
    ],
)
def test_prices_show_in_their_currencys_minor_units(client, currency, price, shown, plain):
    product = ProductFactory(title="Brass lantern", currency=currency, price=Decimal(price))
    card = soup(client.get("/search", {"q": "lantern"})).select_one("#result-list article")
    assert card.select_one("[data-price-now]").get_text() == shown
    assert card.select_one("[data-price]")["data-price"] == plain
    result = client.get("/api/search", {"q": "lantern"}).json()["results"][0]
    assert (result["id"], result["price"]) == (product.pk, plain)


def test_sizes_sharing_the_matched_picture_show_one_in_stock(client):
    store = StoreFactory(slug="sizes")
    sizes = [
        catalog_services.VariantData(
            external_id=ext,
            options={"Colour": "Blue", "Size": size},
            price=Decimal(price),
            availability=stock,
            image_url=BLUE,
        )
        for ext, size, price, stock in (
            ("s", "S", "10.00", "out_of_stock"),
            ("l", "L", "12.00", "in_stock"),
            ("m", "M", "11.00", "in_stock"),
        )
    ]
    product = _shirt(store, variants=sizes, image_urls=[BLUE])
    _embed(product.images.get(), axis(0))
    query = _query_product(axis(0))
    _publish()
    hit = next(
        h for h in services.find_similar_products(product=query).hits if h.product == product
    )
    assert hit.variant.external_id == "m"  # in stock, and the cheaper of the two that are


def test_product_api_has_identifiers_variants_and_offers(client, shirt):
    twin = ProductFactory(
        store=StoreFactory(slug="twin"), title="Linen shirt", gtin=shirt.gtin, price=Decimal("9")
    )
    data = client.get(f"/api/products/{shirt.pk}").json()
    assert (data["id"], data["sku"], data["gtin"], data["mpn"]) == (
        shirt.pk,
        "SHIRT",
        "0012345678905",
        "LS-100",
    )
    assert (data["price"], data["price_max"], data["list_price"]) == ("10.00", "15.00", "14.00")
    assert [v["id"] for v in data["variants"]] == ["101", "102"]
    assert [(o["id"], o["price"]) for o in data["offers"]] == [(twin.pk, "9.00")]
    assert [i["id"] for i in data["images"]] == list(
        shirt.images.order_by("position").values_list("pk", flat=True)
    )
    missing = client.get("/api/products/999999")
    assert missing.status_code == 404
    assert "999999" in missing.json()["error"]
