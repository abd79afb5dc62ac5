"""JSON API and photo uploads (page and API): validation, 400/404/503, real index results."""

import io

import numpy as np
import pytest
from bs4 import BeautifulSoup
from django.test import Client
from PIL import Image

from pipeline.embed import embed_images
from pipeline.indexing import build_index
from search.index import reset_index_cache
from tests.factories import ImageAssetFactory, ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db


def image_bytes(fmt="JPEG", color="blue", size=(64, 64)):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def upload(data, name="photo.jpg"):
    f = io.BytesIO(data)
    f.name = name
    return f


@pytest.fixture
def indexed(tiny_clip):
    """Four products with real thumbnails, embedded by the tiny CLIP and indexed for real."""
    store = StoreFactory(slug="home")
    products = {}
    for color in ("red", "green", "blue", "yellow"):
        product = ProductFactory(store=store, title=f"{color} vase", brand=color.upper())
        asset = ImageAssetFactory(thumbnail__color=color)
        ProductImageFactory(product=product, asset=asset)
        products[color] = product
    embed_images()
    assert build_index(force=True).status == "published"
    reset_index_cache()
    return products


def test_api_search_returns_scored_results_with_signals(client):
    ProductFactory(title="Copper kettle", brand="Hob")
    body = client.get("/api/search", {"q": "kettle"}).json()
    assert body["visual_status"] == "not_ready"
    hit = body["results"][0]
    assert hit["title"] == "Copper kettle"
    assert hit["signals"] == ["keyword"]
    assert hit["keyword_score"] > 0
    assert {"store", "brand", "category"} <= set(body["facets"])


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"q": "x", "min_price": "abc"}, "min_price"),
        ({"q": "x", "page": "0"}, "page"),
        ({"q": "x", "limit": "1000"}, "limit"),
        ({"q": "x", "min_price": "10", "max_price": "5"}, "max_price"),
        ({"q": "x", "brand": "b" * 400}, "brand"),
        ({"q": "x", "sort": "cheapest"}, "sort"),
    ],
)
def test_api_bad_parameter_is_400_naming_it(client, params, bad):
    response = client.get("/api/search", params)
    assert response.status_code == 400
    body = response.json()
    assert bad in body["errors"]
    assert bad in body["error"]


def test_api_similar_unknown_product_is_404(client):
    assert client.get("/api/products/424242/similar").status_code == 404


def test_api_similar_without_index_is_503(client):
    product = ProductImageFactory().product  # a picture of its own, not embedded yet
    response = client.get(f"/api/products/{product.pk}/similar")
    assert response.status_code == 503
    assert "not ready" in response.json()["error"]


def test_api_image_search_without_index_is_503(client):
    response = client.post("/api/search/image", {"image": upload(image_bytes())})
    assert response.status_code == 503


def test_photo_page_without_index_is_503_page(client):
    response = client.post("/search/image", {"image": upload(image_bytes())})
    assert response.status_code == 503
    assert response["Retry-After"] == "120"
    assert b"not ready" in response.content


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"%PDF-1.4 not an image at all", "not a JPEG, PNG or WebP"),
        (image_bytes("GIF"), "not a JPEG, PNG or WebP"),
        (image_bytes()[:200], "cannot be used"),
        (b"", "empty"),
    ],
)
def test_bad_uploads_get_a_clear_message(client, data, message):
    response = client.post("/search/image", {"image": upload(data)})
    assert response.status_code == 400
    alert = BeautifulSoup(response.content, "html.parser").select_one("#image-errors")
    assert message in alert.text


def test_decompression_bomb_is_refused(client, settings):
    settings.MEEPO_MAX_IMAGE_PIXELS = 100 * 100
    response = client.post(
        "/api/search/image", {"image": upload(image_bytes("PNG", size=(400, 400)))}
    )
    assert response.status_code == 400
    assert "pixel" in response.json()["errors"]["image"][0]


def test_too_large_upload_is_refused_and_not_kept(client, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client.post(
        "/api/search/image", {"image": upload(image_bytes(size=(300, 300)) + b"\0" * 2000)}
    )
    assert response.status_code == 400
    assert "too large" in response.json()["errors"]["image"][0]


def test_photo_form_needs_csrf_token():
    client = Client(enforce_csrf_checks=True)
    assert client.post("/search/image", {"image": upload(image_bytes())}).status_code == 403
    page = client.get("/search/image")
    token = BeautifulSoup(page.content, "html.parser").select_one(
        'input[name="csrfmiddlewaretoken"]'
    )
    assert token is not None
    response = client.post(
        "/search/image", {"image": upload(image_bytes()), "csrfmiddlewaretoken": token["value"]}
    )
    assert response.status_code == 503  # past CSRF; no index in this test


@pytest.mark.slow
def test_photo_search_page_and_api_find_the_same_looking_product(client, indexed):
    response = client.post("/search/image", {"image": upload(image_bytes(color="green"))})
    assert response.status_code == 200
    cards = BeautifulSoup(response.content, "html.parser").select("#result-list article")
    assert cards[0]["data-product-id"] == str(indexed["green"].pk)
    body = client.post(
        "/api/search/image", {"image": upload(image_bytes("WEBP", color="green"), "g.webp")}
    ).json()
    assert body["results"][0]["id"] == indexed["green"].pk
    assert body["results"][0]["signals"] == ["visual"]
    assert "ann" in body["timings_ms"]


@pytest.mark.slow
def test_api_similar_and_filters_through_real_index(client, indexed, settings):
    settings.MEEPO_RELEVANCE_FLOOR = False  # the tiny random CLIP's text scores mean nothing
    red = indexed["red"]
    body = client.get(f"/api/products/{red.pk}/similar", {"limit": "2"}).json()
    assert len(body["results"]) == 2
    assert red.pk not in [r["id"] for r in body["results"]]
    assert body["has_more"] is True
    only_blue = client.get(f"/api/products/{red.pk}/similar", {"brand": "BLUE"}).json()
    assert [r["id"] for r in only_blue["results"]] == [indexed["blue"].pk]
    text = client.get("/api/search", {"q": "vase", "brand": "GREEN"}).json()
    assert [r["id"] for r in text["results"]] == [indexed["green"].pk]
    assert set(text["results"][0]["signals"]) == {"visual", "keyword"}
    assert np.isfinite(text["results"][0]["score"])
