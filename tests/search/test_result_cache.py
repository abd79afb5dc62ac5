"""Finished responses for repeated searches: keyed by everything that shapes them, dropped when
a shown product changes."""

from decimal import Decimal

import pytest

from catalog.models import Product
from search import result_cache
from search.selectors import SearchFilters
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def enabled(settings):
    settings.MEEPO_SEARCH_PAGE_CACHE_SECONDS = 60
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "pages": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "p"},
    }
    settings.MEEPO_SEARCH_PAGE_CACHE_ALIAS = "pages"
    result_cache.clear()
    yield
    result_cache.clear()


def key(**changes):
    parts = {
        "kind": "html",
        "version": "v1",
        "query": "red mug",
        "filters": SearchFilters(brands=("Acme",)),
        "sort": "relevance",
        "offset": 0,
        "limit": 24,
    }
    return result_cache.page_key(**(parts | changes))


def test_off_stores_nothing(settings):
    settings.MEEPO_SEARCH_PAGE_CACHE_SECONDS = 0
    result_cache.put_page(key(), body=b"x", content_type="text/html", product_ids=[])
    assert result_cache.get_page(key()) is None


def test_the_key_depends_on_every_part():
    base = key()
    assert key() == base
    for change in (
        {"kind": "api"},
        {"version": "v2"},
        {"query": "red mugs"},
        {"filters": SearchFilters(brands=("Acme",), in_stock=True)},
        {"sort": "price_asc"},
        {"offset": 24},
        {"limit": 12},
    ):
        assert key(**change) != base, change


def test_a_repeat_is_served_while_its_products_are_unchanged(enabled):
    products = [ProductFactory(price=Decimal("10.00")) for _ in range(3)]
    ids = [p.pk for p in products]
    result_cache.put_page(key(), body=b"<page>", content_type="text/html", product_ids=ids)
    page = result_cache.get_page(key())
    assert page is not None
    assert (page.body, page.content_type, page.product_ids) == (b"<page>", "text/html", tuple(ids))
    assert result_cache.get_page(key(version="v2")) is None


@pytest.mark.parametrize(
    "change",
    [
        {"price": Decimal("9.99")},
        {"availability": Product.Availability.OUT_OF_STOCK},
        {"is_active": False},
        {"list_price": Decimal("20.00")},
    ],
)
def test_a_shown_product_that_changed_drops_the_entry(enabled, change):
    products = [ProductFactory(price=Decimal("10.00")) for _ in range(3)]
    ids = [p.pk for p in products]
    result_cache.put_page(key(), body=b"<page>", content_type="text/html", product_ids=ids)
    Product.objects.filter(pk=ids[1]).update(**change)  # a bulk write: updated_at untouched
    assert result_cache.get_page(key()) is None
    Product.objects.filter(pk=ids[1]).update(price=Decimal("10.00"))
    assert result_cache.get_page(key()) is None  # forgotten, not revived


def test_a_deleted_product_drops_the_entry(enabled):
    products = [ProductFactory() for _ in range(2)]
    result_cache.put_page(
        key(), body=b"p", content_type="text/html", product_ids=[p.pk for p in products]
    )
    products[0].delete()
    assert result_cache.get_page(key()) is None


def test_an_empty_page_is_cached_too(enabled):
    result_cache.put_page(key(), body=b"none", content_type="text/html", product_ids=[])
    assert result_cache.get_page(key()).body == b"none"


def test_request_keys_ignore_parameter_order_and_spacing_but_not_values(rf):
    def k(path, kind="html"):
        return result_cache.request_key(rf.get(path), kind=kind, version="v1")

    base = k("/search?q=red+mug&brand=Acme&brand=Birch&sort=price_asc")
    assert k("/search?sort=price_asc&brand=Acme&q=red++mug+&brand=Birch") == base
    assert k("/search?q=red+mug&brand=Birch&brand=Acme&sort=price_asc") != base  # order of values
    assert k("/search?q=red+mug&brand=Acme&brand=Birch&sort=price_asc&page=2") != base
    assert k("/search?q=red+mug&brand=Acme&brand=Birch&sort=price_asc", kind="htmx") != base
    assert (
        result_cache.request_key(
            rf.get("/search?q=red+mug&brand=Acme&brand=Birch&sort=price_asc"),
            kind="html",
            version="v2",
        )
        != base
    )


def test_responses_round_trip_with_vary_and_only_when_ok(enabled):
    from django.http import HttpResponse

    product = ProductFactory()
    ok = HttpResponse(b"<html>", content_type="text/html; charset=utf-8")
    ok["Vary"] = "HX-Request"
    result_cache.keep_response("k1", ok, [product.pk])
    hit = result_cache.cached_response("k1")
    assert (hit.content, hit["Content-Type"], hit["Vary"]) == (
        b"<html>",
        "text/html; charset=utf-8",
        "HX-Request",
    )
    assert hit["X-Meepo-Cache"] == "hit"
    result_cache.keep_response("k2", HttpResponse(b"bad", status=400), [])
    assert result_cache.cached_response("k2") is None
    Product.objects.filter(pk=product.pk).update(price=Decimal("1.23"))
    assert result_cache.cached_response("k1") is None
