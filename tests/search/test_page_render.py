"""The results page rendered by Jinja2 (search.page_render) writes exactly what the Django
templates it replaced wrote: those are kept in reference/search/ (over the real templates/base.html)
and both render the view's own context for the same requests: facets and applied filters, notes
on unusable parameters, empty results with examples, a suggestion, a correction, ?debug=1,
not-ready visual search, hostile text, the htmx fragment, the "more" fragment, a script prefix.
"""

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest
from django.template.backends.django import DjangoTemplates
from django.test import Client
from django.urls import set_script_prefix

from catalog.models import Product
from search import cards, page_render, result_cache, services, views
from search.forms import SearchForm
from search.pages import SearchPage
from tests.factories import ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db

REFERENCE_DIR = Path(__file__).parent / "reference"
REFERENCE_TEMPLATES = {
    "html": "search/results.html",
    "htmx": "search/_search_body.html",
    "more": "search/_more.html",
}
HOSTILE = 'Tom\'s "best" <script>alert(1)</script> & {{ 7*7 }} كوب'


def reference_engine(settings):
    """The Django engine the site used, with the replaced templates before the site's own."""
    options = settings.TEMPLATES[0]
    return DjangoTemplates(
        {
            "NAME": "reference",
            "DIRS": [REFERENCE_DIR, *options["DIRS"]],
            "APP_DIRS": True,
            "OPTIONS": dict(options["OPTIONS"]),
        }
    )


@pytest.fixture(autouse=True)
def fresh_caches():
    cards.clear_cache()
    page_render.clear_layout()
    yield
    cards.clear_cache()
    page_render.clear_layout()


@pytest.fixture
def catalogue():
    home = StoreFactory(name="O'Brien & Sons", slug="obrien")
    kitchen = StoreFactory(name="Kitchen <Co>", slug="kitchen")
    for n in range(30):
        product = ProductFactory(
            store=[home, kitchen][n % 2],
            title=f"Steel {['mug', 'pan', 'fork'][n % 3]} {n} {HOSTILE if n == 4 else ''}",
            brand=["Forged", "Acme & Co", "ماركة"][n % 3],
            category=["Kitchen", "Bedroom"][n % 2],
            price=Decimal(10 + n) if n % 5 else None,
            currency="EUR",
            availability=["in_stock", "out_of_stock"][n % 4 == 0],
        )
        if n % 7:
            ProductImageFactory(product=product)
    return Product.objects.all()


def get(client, params, *, htmx=False, restore=False, **extra):
    headers = {"HX-Request": "true"} if htmx else {}
    if restore:
        headers["HX-History-Restore-Request"] = "true"
    return client.get("/search", params, headers=headers, **extra)


def assert_same_as_django(settings, client, params, *, expected_kind, **kwargs):
    seen = []

    def capture(kind, context):
        html = page_render.render_results_page(kind, context)
        seen.append((kind, context, html))
        return html

    views.render_results_page, real = capture, views.render_results_page
    try:
        response = get(client, params, **kwargs)
    finally:
        views.render_results_page = real
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Vary"] == "HX-Request"  # no session or CSRF cookie read: no "Cookie"
    assert not response.cookies
    assert "render;dur=" in response["Server-Timing"]
    [(kind, context, html)] = seen
    assert kind == expected_kind
    assert response.content.decode() == html
    request = response.wsgi_request
    template = reference_engine(settings).get_template(REFERENCE_TEMPLATES[kind])
    assert html == template.render(context, request)
    return html


PAGES = [
    {"q": "steel"},
    {"q": "steel", "store": ["obrien", "nowhere"], "brand": "Acme & Co", "in_stock": "on"},
    {
        "q": "steel",
        "min_price": "30",
        "max_price": "12",
        "category": "Kitchen",
        "sort": "price_asc",
    },
    {"q": "steel", "min_price": "abc", "page": "x", "colour": "blue"},
    {"q": "steel", "debug": "1"},
    {"q": "steel", "limit": "5", "page": "2"},
    {"q": HOSTILE},
    {"q": "mug", "brand": "ماركة"},
    {"q": "nothing-like-it"},
    {"q": "nothing-like-it", "store": "kitchen"},
    {"q": ""},
    {"store": "kitchen"},
    {"brand": "nobody"},
]


@pytest.mark.parametrize("params", PAGES)
@pytest.mark.parametrize(("htmx", "kind"), [(False, "html"), (True, "htmx")])
def test_results_page_is_what_the_django_templates_wrote(
    settings, client, catalogue, params, htmx, kind
):
    html = assert_same_as_django(settings, client, params, expected_kind=kind, htmx=htmx)
    assert (html.startswith("<!doctype html>")) is (kind == "html")


@pytest.mark.parametrize("params", [{"q": "steel", "limit": "5", "page": "2"},
                                    {"q": "steel", "limit": "5", "page": "6"},
                                    {"q": "steel", "limit": "4", "page": "2", "debug": "1"}])  # fmt: skip
def test_more_fragment_is_what_the_django_template_wrote(settings, client, catalogue, params):
    html = assert_same_as_django(
        settings, client, {**params, "fragment": "more"}, expected_kind="more", htmx=True
    )
    assert 'hx-swap-oob="beforeend:#result-list"' in html


def test_a_history_restore_gets_the_full_page(settings, client, catalogue):
    assert_same_as_django(
        settings, client, {"q": "steel"}, expected_kind="html", htmx=True, restore=True
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"suggestion": "steal <b>'s"},
        {"corrected_from": 'steeel & "co"', "query": "steel"},
        {"visual_status": "not_ready", "notice": "Not <yet> ready."},
        {"total": 1000, "total_is_lower_bound": True},
        {"total": 1},
        {"total": None},
        {"price_range": (Decimal("9.5"), Decimal("1234.567"), "EUR")},
        {"price_range": None},
        {"mode": "browse", "query": ""},
        {"mode": "browse", "total": 0, "hits": []},
        {"mode": "image"},
        {"has_more": False},
    ],
)
@pytest.mark.parametrize(("htmx", "kind"), [(False, "html"), (True, "htmx")])
def test_every_state_of_a_page_is_what_the_django_templates_wrote(
    settings, client, catalogue, monkeypatch, extra, htmx, kind
):
    real = services.search_products
    monkeypatch.setattr(
        services,
        "search_products",
        lambda **kw: dataclasses.replace(real(**kw), **extra),
    )
    assert_same_as_django(settings, client, {"q": "steel"}, expected_kind=kind, htmx=htmx)


def test_form_errors_are_written_as_django_wrote_them(settings, rf, catalogue):
    form = SearchForm({"q": "x", "page": "'<x>'", "limit": "0"})
    assert not form.is_valid()
    context = {
        "form": form,
        "page": SearchPage(mode="text", query="x"),
        "filters": form.filters() if hasattr(form, "cleaned_data") else None,
        "facet_groups": [],
        "examples": [],
        "debug": False,
        "more_url": "",
        "sort_choices": services.SORT_CHOICES,
        "applied": [],
        "clear_url": "?q=x",
        "notes": {},
    }
    request = rf.get("/search?q=x")
    engine = reference_engine(settings)
    for kind, name in REFERENCE_TEMPLATES.items():
        html = page_render.render_results_page(kind, context)
        assert html == engine.get_template(name).render(context, request)
    assert "&#x27;&lt;x&gt;&#x27;" not in html  # the value is not echoed, only the message


def test_script_prefix_reaches_the_layout_and_the_links(settings, catalogue):
    set_script_prefix("/shop/")  # what the WSGI handler does for SCRIPT_NAME=/shop
    try:
        html = assert_same_as_django(settings, Client(), {"q": "steel"}, expected_kind="html")
    finally:
        set_script_prefix("/")
    assert 'action="/shop/search"' in html
    assert 'href="/shop/"' in html
    result_cache.clear()  # its key has no script prefix: a site has one
    plain = assert_same_as_django(settings, Client(), {"q": "steel"}, expected_kind="html")
    assert 'action="/search"' in plain  # a layout per prefix, not the first one seen
    assert 'href="/"' in plain


def test_layout_is_the_django_base_layout(client, catalogue):
    """The results page's head, header links and footer are templates/base.html's as Django
    writes them for any other page (here the 404 page)."""
    django_page = client.get("/no-such-page").content.decode()
    results = client.get("/search", {"q": "steel"}).content.decode()
    assert results[: results.index("<title>")] == django_page[: django_page.index("<title>")]
    assert results[results.index("</main>") :] == django_page[django_page.index("</main>") :]
    assert (
        results[results.index("</title>") : results.index('<div class="order-last')]
        == (
            django_page[django_page.index("</title>") : django_page.index('<div class="order-last')]
        )
    )


def test_the_pages_compared_show_every_part_of_the_page(client, catalogue):
    """The comparisons above are worth something only if their pages show these parts."""
    html = "".join(get(client, params).content.decode() for params in PAGES)
    for part in (
        'data-state="applied-filters"', 'data-note="page"', 'data-note="min_price"',
        'data-state="empty"', 'data-state="no-results"', "Popular:", "remove the filters",
        'data-facet="brand"', "checked", "data-signal", 'hx-get="?q=steel',
        'data-state="not-ready"', "&lt;script&gt;", 'aria-invalid="true"', " selected>",
    ):  # fmt: skip
        assert part in html, part
