"""The results view answers a repeated search from search.result_cache, and re-renders when a
shown product changed."""

from decimal import Decimal

import pytest

from catalog.models import Product
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _cache(settings):
    settings.MEEPO_SEARCH_PAGE_CACHE_SECONDS = 60


def miss_then_hit(client, url: str):
    """The first answer is rendered, the same search (spaced differently) comes from the cache."""
    first = client.get(url, {"q": "enamel mug"})
    assert first.status_code == 200
    assert "X-Meepo-Cache" not in first
    again = client.get(url, {"q": " enamel   mug"})
    assert again["X-Meepo-Cache"] == "hit"
    return first, again


def test_a_repeat_is_served_from_the_cache_until_a_shown_product_changes(client):
    mug = ProductFactory(title="Enamel mug", price=Decimal("12.00"))
    first, again = miss_then_hit(client, "/search")
    assert again.content == first.content
    Product.objects.filter(pk=mug.pk).update(price=Decimal("9.50"))
    fresh = client.get("/search", {"q": "enamel mug"})
    assert "X-Meepo-Cache" not in fresh
    assert b"9.50" in fresh.content


def test_page_fragment_and_typing_are_kept_apart(client):
    ProductFactory(title="Enamel mug")
    page = client.get("/search", {"q": "enamel mug"})
    fragment = client.get("/search", {"q": "enamel mug"}, HTTP_HX_REQUEST="true")
    assert "X-Meepo-Cache" not in fragment
    assert fragment.content != page.content
    typing = client.get(
        "/search", {"q": "enamel mug"}, HTTP_HX_REQUEST="true", HTTP_X_SEARCH_TYPING="1"
    )
    assert typing["X-Meepo-Cache"] == "hit"
    assert typing["HX-Replace-Url"] == "/search?q=enamel+mug"


def test_off_when_its_lifetime_is_zero(client, settings):
    settings.MEEPO_SEARCH_PAGE_CACHE_SECONDS = 0
    ProductFactory(title="Enamel mug")
    client.get("/search", {"q": "enamel mug"})
    assert "X-Meepo-Cache" not in client.get("/search", {"q": "enamel mug"})


def test_on_by_default_in_a_local_memory_cache_of_its_own():
    from django.conf import settings as django_settings

    from meepo import settings as defaults

    assert defaults.MEEPO_SEARCH_PAGE_CACHE_SECONDS == 60
    assert defaults.MEEPO_SEARCH_SNAPSHOT is True
    alias = django_settings.CACHES[defaults.MEEPO_SEARCH_PAGE_CACHE_ALIAS]
    assert alias["BACKEND"].endswith("LocMemCache")
    assert alias["LOCATION"] != django_settings.CACHES["default"].get("LOCATION")


def test_the_api_answers_a_repeat_from_the_cache_per_origin(client):
    mug = ProductFactory(title="Enamel mug", price=Decimal("12.00"))
    first, again = miss_then_hit(client, "/api/search")
    assert again.json()["results"] == first.json()["results"]
    # Absolute URLs in the body: another host name is another entry.
    other = client.get("/api/search", {"q": "enamel mug"}, HTTP_HOST="localhost")
    assert "X-Meepo-Cache" not in other
    assert "//localhost/" in other.json()["results"][0]["page"]
    Product.objects.filter(pk=mug.pk).update(availability="out_of_stock")
    assert "X-Meepo-Cache" not in client.get("/api/search", {"q": "enamel mug"})


def test_a_bad_api_request_is_not_kept(client):
    assert client.get("/api/search", {"q": "mug", "sort": "nope"}).status_code == 400
    assert "X-Meepo-Cache" not in client.get("/api/search", {"q": "mug", "sort": "nope"})
