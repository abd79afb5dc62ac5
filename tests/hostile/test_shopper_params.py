"""Every query, filter, paging and id parameter of the pages and the API, fuzzed with Hypothesis
against the real views over a small catalogue: the answer is always a clear outcome (200, or a
4xx naming the parameter, or 503 while no index exists), never a 500, and JSON under /api/.

Deterministic (derandomize) so CI runs the same examples every time; each test sends a few
hundred requests.
"""

from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
OK = {200, 400, 404, 405, 422, 503}

# Values people and scripts really send: odd numbers, huge numbers, unicode, control characters.
nasty_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(
        [
            "", " ", "0", "-1", "1e309", "NaN", "Infinity", "-0", "0x10", "1_000", "١٢٣",
            "9223372036854775808", "99999999999999999999999999", "12.345", "1,5", "\u202e",
            "' OR 1=1 --", '"', "*", "NEAR(a b)", "a AND b", "-", "--", "\\", "%00", "<script>",
            "\x00", "a\x00b", "\ud7ff", "x" * 2000,
        ]
    ),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)  # fmt: skip
param_values = st.one_of(nasty_text, st.lists(nasty_text, min_size=2, max_size=25))

SEARCH_PARAMS = [
    "q", "store", "brand", "category", "min_price", "max_price", "in_stock", "sort", "page",
    "limit", "fragment", "debug", "variant",
]  # fmt: skip
SIMILAR_PARAMS = [
    "store",
    "brand",
    "category",
    "min_price",
    "max_price",
    "in_stock",
    "page",
    "limit",
]
query_dicts = st.dictionaries(st.sampled_from(SEARCH_PARAMS), param_values, max_size=6)
similar_dicts = st.dictionaries(st.sampled_from(SIMILAR_PARAMS), param_values, max_size=5)
ids = st.one_of(
    st.integers(min_value=0, max_value=10**40).map(str),
    st.text(max_size=25).map(lambda s: quote(s, safe="")),
)


@pytest.fixture
def shop(settings):
    store = StoreFactory(slug="home", name="Home")
    products = [
        ProductImageFactory(product__store=store, product__title=t, product__brand=b).product
        for t, b in [("Red chair", "Acme"), ("Blue mug", "Potters"), ("Green lamp", "Acme")]
    ]
    return products


def _clean(value):
    # The test client cannot put a lone surrogate into a URL; a browser would percent-encode it
    # as UTF-8 it cannot form either, so such values never reach us.
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value.encode("utf-8", "replace").decode("utf-8")


def _query(params: dict) -> dict:
    return {k: _clean(v) for k, v in params.items()}


def _assert_json(response):
    assert response["Content-Type"] == "application/json", response.content[:200]
    body = response.json()
    if response.status_code >= 400:
        assert body["error"]


@given(params=query_dicts, htmx=st.booleans())
@FUZZ
def test_fuzzed_search_page_parameters(shop, params, htmx):
    headers = {"HX-Request": "true"} if htmx else {}
    response = Client().get("/search", _query(params), headers=headers)

    assert response.status_code in {200, 400}, (params, response.status_code)


@given(params=query_dicts)
@FUZZ
def test_fuzzed_search_api_parameters(shop, params):
    response = Client().get("/api/search", _query(params))

    assert response.status_code in {200, 400}, (params, response.status_code)
    _assert_json(response)
    if response.status_code == 400:
        assert set(response.json()["errors"]) <= set(SEARCH_PARAMS) | {"__all__"}


@given(pk=ids, params=similar_dicts)
@FUZZ
def test_fuzzed_similar_api_ids_and_parameters(shop, pk, params):
    response = Client().get(f"/api/products/{pk}/similar", _query(params))

    assert response.status_code in OK, (pk, params, response.status_code)
    _assert_json(response)


@given(pk=ids)
@FUZZ
def test_fuzzed_product_api_ids(shop, pk):
    response = Client().get(f"/api/products/{pk}")

    assert response.status_code in {200, 404}, (pk, response.status_code)
    _assert_json(response)


@given(pk=ids, params=st.dictionaries(st.sampled_from(["variant", "debug"]), nasty_text))
@FUZZ
def test_fuzzed_product_page_ids(shop, pk, params):
    response = Client().get(f"/products/{pk}", _query(params))

    assert response.status_code in {200, 404}, (pk, response.status_code)


@given(params=similar_dicts, api=st.booleans())
@FUZZ
def test_fuzzed_photo_search_form_fields(shop, params, api):
    from tests.hostile.shopper_inputs import photo, upload

    path = "/api/search/image" if api else "/search/image"
    response = Client().post(path, {**_query(params), "image": upload(photo())})

    assert response.status_code in {200, 400, 503}, (params, response.status_code)
    if api:
        _assert_json(response)


@given(pk=st.sampled_from([0, 1, 2, 3]))
@FUZZ
def test_existing_products_answer_normally(shop, pk):
    product = shop[pk % len(shop)]
    assert Client().get(f"/products/{product.pk}").status_code == 200
