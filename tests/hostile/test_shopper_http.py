"""Hostile requests to the site and the API: methods, ids, error formats, headers, health, logins.

Each asserts a clear, bounded outcome: a 2xx/4xx with the right body (JSON under /api/), never a
500; no inline code the Content-Security-Policy would have to allow; details of /healthz only for
this machine or the operator's token; admin logins locked out after a few failures.
"""

import pytest
from bs4 import BeautifulSoup
from django.contrib.auth import get_user_model
from django.test import Client

from tests.factories import ProductFactory, ProductImageFactory

pytestmark = pytest.mark.django_db

HUGE_IDS = ["9223372036854775808", "99999999999999999999", "1" + "0" * 40]


@pytest.mark.parametrize("pk", HUGE_IDS)
def test_product_page_with_an_id_beyond_the_database_is_404(client, pk):
    assert client.get(f"/products/{pk}").status_code == 404


@pytest.mark.parametrize("pk", HUGE_IDS)
def test_similar_api_with_an_id_beyond_the_database_is_json_404(client, pk):
    response = client.get(f"/api/products/{pk}/similar")

    assert response.status_code == 404
    assert "error" in response.json()


def test_largest_database_id_is_an_ordinary_unknown_product(client):
    assert client.get("/products/9223372036854775807").status_code == 404
    assert client.get("/api/products/9223372036854775807/similar").json()["error"]


@pytest.mark.parametrize(
    "path", ["/", "/search?q=chair", "/search/image", "/healthz", "/api/search?q=chair"]
)
def test_head_works_where_get_does(client, path):
    get = client.get(path)
    head = client.head(path)

    assert get.status_code == 200
    assert head.status_code == 200
    assert head.content == b""


def test_head_of_a_product_page_and_its_similar_api(client):
    product = ProductFactory()
    assert client.head(f"/products/{product.pk}").status_code == 200
    assert client.head(f"/api/products/{product.pk}/similar").status_code in (422, 503)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("post", "/api/search", "GET, HEAD, OPTIONS"),
        ("delete", "/api/search", "GET, HEAD, OPTIONS"),
        ("get", "/api/search/image", "OPTIONS, POST"),
        ("put", "/api/search/image", "OPTIONS, POST"),
        ("patch", "/api/products/1/similar", "GET, HEAD, OPTIONS"),
    ],
)
def test_api_wrong_method_is_a_json_405_with_allow(client, method, path, allowed):
    response = getattr(client, method)(path)

    assert response.status_code == 405
    assert response["Allow"] == allowed
    assert "not allowed" in response.json()["error"]


@pytest.mark.parametrize("path", ["/api/search", "/api/search/image", "/api/products/1/similar"])
def test_api_options_lists_the_methods(client, path):
    response = client.options(path)

    assert response.status_code == 204
    assert "OPTIONS" in response["Allow"]


@pytest.mark.parametrize("path", ["/", "/search", "/products/1", "/healthz"])
def test_pages_refuse_other_methods_with_405(client, path):
    response = client.delete(path)

    assert response.status_code == 405
    assert "GET" in response["Allow"]


@pytest.mark.parametrize("path", ["/api/nope", "/api/products/abc/similar", "/api/search/"])
def test_unknown_api_urls_are_json_404(client, path):
    response = client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]


def test_an_api_crash_is_a_json_500(client, monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("search.services.search_products", boom)
    crashing = Client(raise_request_exception=False)

    response = crashing.get("/api/search", {"q": "x"})

    assert response.status_code == 500
    assert response.json() == {"error": "internal error; it has been logged"}


def test_an_unknown_page_keeps_the_html_404(client):
    response = client.get("/no/such/page")

    assert response.status_code == 404
    assert b"couldn't find that page" in response.content


def test_similar_for_a_product_with_only_shared_pictures_is_422_not_503(client):
    product = ProductImageFactory(is_shared=True).product

    response = client.get(f"/api/products/{product.pk}/similar")

    assert response.status_code == 422
    assert "no picture of its own" in response.json()["error"]


def test_similar_for_a_product_whose_own_picture_is_not_embedded_yet_stays_503(client):
    product = ProductImageFactory(is_shared=False).product

    assert client.get(f"/api/products/{product.pk}/similar").status_code == 503


def test_product_page_with_only_shared_pictures_does_not_say_not_ready(client):
    product = ProductImageFactory(is_shared=True).product

    page = BeautifulSoup(client.get(f"/products/{product.pk}").content, "html.parser")

    assert page.select_one('[data-state="not-ready"]') is None
    assert "no photo of its own" in page.select_one('[data-state="no-image"]').text


# --- /healthz: the status for everyone, the details for this machine or the operator ----------


def _health(client, **extra):
    response = client.get("/healthz", **extra)
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(
    "meta",
    [
        {"REMOTE_ADDR": "203.0.113.7"},
        # behind nginx (unix socket or loopback): nginx appended the client it saw, last
        {"REMOTE_ADDR": "", "HTTP_X_FORWARDED_FOR": "203.0.113.7"},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "127.0.0.1, 203.0.113.7"},
        # a remote client cannot claim to be local
        {"REMOTE_ADDR": "203.0.113.7", "HTTP_X_FORWARDED_FOR": "127.0.0.1"},
    ],
)
def test_healthz_shows_a_remote_client_the_status_only(client, meta):
    assert _health(client, **meta) == {"status": "degraded"}


@pytest.mark.parametrize(
    "meta",
    [
        {"REMOTE_ADDR": "127.0.0.1"},
        {"REMOTE_ADDR": "::1"},
        {"REMOTE_ADDR": "", "HTTP_X_FORWARDED_FOR": "127.0.0.1"},
    ],
)
def test_healthz_shows_this_machine_the_details(client, meta):
    body = _health(client, **meta)

    assert body["status"] == "degraded"
    assert "no index published" in body["index"]["detail"]


def test_healthz_details_for_the_operator_token_only(client, settings):
    remote = {"REMOTE_ADDR": "203.0.113.7"}
    settings.MEEPO_HEALTH_TOKEN = "s3cret-token"

    assert "index" in _health(client, HTTP_AUTHORIZATION="Bearer s3cret-token", **remote)
    assert _health(client, HTTP_AUTHORIZATION="Bearer wrong", **remote) == {"status": "degraded"}
    settings.MEEPO_HEALTH_TOKEN = ""
    assert _health(client, HTTP_AUTHORIZATION="Bearer ", **remote) == {"status": "degraded"}


# --- headers: CSP, Permissions-Policy; templates without inline code --------------------------


def _pages(client):
    product = ProductImageFactory().product
    return {
        path: client.get(path)
        for path in ["/", "/search?q=chair", "/search/image", f"/products/{product.pk}", "/nope"]
    }


def test_pages_carry_a_strict_csp_and_a_permissions_policy(client):
    for path, response in _pages(client).items():
        csp = response["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
        assert directives["default-src"] == "'none'", path
        assert directives["script-src"] == "'self'", path
        assert directives["style-src"] == "'self'", path
        assert directives["frame-ancestors"] == "'none'", path
        assert "unsafe" not in csp, path
        assert "camera=()" in response["Permissions-Policy"], path
        assert "geolocation=()" in response["Permissions-Policy"], path


def test_templates_hold_no_inline_scripts_styles_or_handlers(client):
    for path, response in _pages(client).items():
        soup = BeautifulSoup(response.content, "html.parser")
        assert all(s.get("src") for s in soup.find_all("script")), path
        assert soup.find_all("style") == [], path
        for tag in soup.find_all(True):
            assert "style" not in tag.attrs, (path, tag.name)
            assert not [a for a in tag.attrs if a.startswith(("on", "hx-on"))], (path, tag.name)
            for attr in ("href", "src", "action"):
                assert not str(tag.get(attr, "")).lower().startswith("javascript:"), path


def test_htmx_is_told_not_to_inject_styles_or_eval(client):
    meta = BeautifulSoup(client.get("/").content, "html.parser").find(
        "meta", attrs={"name": "htmx-config"}
    )
    assert '"includeIndicatorStyles": false' in meta["content"]
    assert '"allowEval": false' in meta["content"]


# --- store text: isolated from its surroundings --------------------------------------------------


def test_store_text_is_bidi_isolated_on_cards_and_the_product_page(client):
    product = ProductImageFactory(
        product__title="\u202egnp.exe", product__brand="\u05d0\u05d1\u05d2"
    ).product

    card = BeautifulSoup(client.get("/search", {"q": "gnp"}).content, "html.parser")
    detail = BeautifulSoup(client.get(f"/products/{product.pk}").content, "html.parser")

    assert detail.select_one("h1 bdi") is not None
    assert any(b.text.endswith("gnp.exe") for b in detail.find_all("bdi"))
    assert any(b.text == "\u05d0\u05d1\u05d2" for b in detail.find_all("bdi"))
    assert card.select_one("#result-list article h3 a bdi").text.endswith("gnp.exe")


# --- admin login: locked out after a few failures (django-axes) ----------------------------------


def test_admin_login_locks_out_after_repeated_failures(client, settings):
    settings.AXES_FAILURE_LIMIT = 5
    get_user_model().objects.create_superuser("boss", "boss@example.com", "right-password-123")
    attacker = Client(REMOTE_ADDR="203.0.113.9")

    for _ in range(5):
        attacker.post("/admin/login/", {"username": "boss", "password": "guess"})
    last = attacker.post("/admin/login/", {"username": "boss", "password": "right-password-123"})

    assert last.status_code == 429
    assert "_auth_user_id" not in attacker.session
    # another address is not locked out
    other = Client(REMOTE_ADDR="198.51.100.4")
    ok = other.post("/admin/login/", {"username": "boss", "password": "right-password-123"})
    assert ok.status_code == 302
