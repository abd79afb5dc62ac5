"""The request path's cheaper parts (meepo.middleware, SearchForm's shared fields, the page cache's
fingerprint) behave as the stock code they replace: same CSP header, per-view overrides and
nonces honoured, sessions, users and messages wherever anything can read them."""

from datetime import timedelta
from decimal import Decimal

import pytest
from csp.constants import NONCE, SELF
from csp.exceptions import CSPNonceError
from csp.utils import build_policy
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog.models import Product
from meepo.middleware import (
    ADMIN_PATH,
    AuthenticationMiddleware,
    ContentSecurityPolicyMiddleware,
    MessageMiddleware,
    SessionMiddleware,
)
from search import result_cache
from search.forms import SearchForm
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def _through_csp(request, response):
    middleware = ContentSecurityPolicyMiddleware(lambda r: response)
    return middleware(request)


def test_pages_carry_the_policy_django_csp_builds(client):
    response = client.get("/search", {"q": "chair"})
    assert response["Content-Security-Policy"] == build_policy()
    assert "Content-Security-Policy-Report-Only" not in response


def test_a_changed_policy_setting_is_used_at_once(client, settings):
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": [SELF]}}
    assert client.get("/")["Content-Security-Policy"] == "default-src 'self'"
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"img-src": [SELF]}}
    report_only = client.get("/")["Content-Security-Policy-Report-Only"]
    assert report_only == build_policy(report_only=True)
    assert "img-src 'self'" in report_only


def test_per_response_overrides_and_exemptions_are_honoured(rf):
    updated = HttpResponse()
    updated._csp_update = {"img-src": ["https://cdn.example"]}
    header = _through_csp(rf.get("/"), updated)["Content-Security-Policy"]
    assert "https://cdn.example" in header
    assert "default-src 'none'" in header
    exempt = HttpResponse()
    exempt._csp_exempt = True
    assert "Content-Security-Policy" not in _through_csp(rf.get("/"), exempt)
    preset = HttpResponse()
    preset["Content-Security-Policy"] = "default-src 'self'"
    assert _through_csp(rf.get("/"), preset)["Content-Security-Policy"] == "default-src 'self'"


def test_a_nonce_asked_for_is_in_the_policy_and_one_asked_too_late_is_an_error(rf, settings):
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"script-src": [SELF, NONCE]}}
    request = rf.get("/")

    def view(request):
        return HttpResponse(f"<script nonce='{request.csp_nonce}'></script>")

    response = ContentSecurityPolicyMiddleware(view)(request)
    assert f"'nonce-{request.csp_nonce}'" in response["Content-Security-Policy"]
    late = rf.get("/")
    _through_csp(late, HttpResponse())
    with pytest.raises(CSPNonceError):
        str(late.csp_nonce)


def _seen(request, *middleware):
    """The request as the view sees it after `middleware` (outermost first)."""
    seen = {}

    def view(request):
        seen["request"] = request
        return HttpResponse()

    handler = view
    for cls in reversed(middleware):
        handler = cls(handler)
    handler(request)
    return seen["request"]


def test_anonymous_public_reads_get_an_anonymous_user_and_no_session(rf):
    stack = (SessionMiddleware, AuthenticationMiddleware, MessageMiddleware)
    request = _seen(rf.get("/search?q=chair"), *stack)
    assert request.user.is_anonymous
    assert not hasattr(request, "session")
    assert not hasattr(request, "_messages")


@pytest.mark.parametrize(
    "request_args",
    [
        ("get", "/admin/login/", {}),
        ("post", "/search/image", {}),
        ("get", "/search", {"HTTP_COOKIE": "sessionid=abc"}),
    ],
)
def test_admin_posts_and_session_holders_get_the_stock_middleware(rf, request_args):
    method, path, extra = request_args
    stack = (SessionMiddleware, AuthenticationMiddleware, MessageMiddleware)
    request = _seen(getattr(rf, method)(path, **extra), *stack)
    assert hasattr(request, "session")
    assert hasattr(request, "_messages")
    assert request.user.is_anonymous  # the lazy user: no such session


def test_the_admin_is_where_the_middleware_expects_it():
    assert reverse("admin:index") == ADMIN_PATH
    assert reverse("evaluation_report").startswith(ADMIN_PATH)


def test_public_pages_set_no_cookie_and_do_not_vary_on_it(client):
    response = client.get("/search", {"q": "chair"})
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")


def test_a_signed_in_admin_stays_signed_in_across_public_pages():
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123-long")
    browser = Client()
    browser.force_login(admin)
    assert browser.get("/search", {"q": "chair"}).status_code == 200
    assert browser.get("/admin/").status_code == 200
    assert browser.get("/admin/logout/").status_code in (200, 302, 405)


def test_search_forms_share_fields_but_not_their_state():
    bad, good = SearchForm({"page": "x", "q": "a"}), SearchForm({"page": "2", "q": "b"})
    assert bad.fields["page"] is good.fields["page"]
    assert not bad.is_valid()
    assert good.is_valid()
    assert "page" in bad.errors
    assert not good.errors
    assert (good.cleaned_data["page"], good.cleaned_data["q"]) == (2, "b")


@pytest.fixture
def page_cache(settings):
    settings.MEEPO_SEARCH_PAGE_CACHE_SECONDS = 60
    result_cache.clear()
    yield
    result_cache.clear()


def test_a_cached_page_survives_an_unchanged_product_and_not_a_touched_one(page_cache):
    product = ProductFactory(price=Decimal("10.00"))
    result_cache.put_page("k", body=b"<p>", content_type="text/html", product_ids=[product.pk])
    assert result_cache.get_page("k") is not None
    later = timezone.now() + timedelta(seconds=1)
    Product.objects.filter(pk=product.pk).update(updated_at=later)
    assert result_cache.get_page("k") is None
