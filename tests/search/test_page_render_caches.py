"""The results page's shortcuts write what the long way writes (search.jinja_env, search.cards):
thumbnails' URLs without urljoin, facet options written around their counts, numbers formatted
once, `{{ value }}` escaped once, cards and links per script prefix, the LRU's order."""

from decimal import Decimal

import pytest
from django.core.files.storage import InMemoryStorage
from django.db.models.fields.files import FieldFile
from django.template import engines
from django.template.defaultfilters import floatformat
from django.urls import set_script_prefix
from django.utils import translation
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from catalog.models import ImageAsset
from search import cards, jinja_env
from search.facets import FacetRow
from search.filters import SearchFilters
from search.page_context import facet_groups
from search.pages import SearchPage
from tests.search.test_card_cache import DJANGO_FACETS
from tests.search.test_cards import hits

NAMES = [
    "thumbs/00/01/" + "a" * 64 + ".jpg",
    "plain.webp",
    "with space.jpg",
    "ümlaut/é.jpg",
    "../up.jpg",
    "a/../b.jpg",
    "a/./b.jpg",
    "./here.jpg",
    "a//b.jpg",
    ".hidden/x.jpg",
    "a..b/c.jpg",
    "q?x=1.jpg",
    "hash#x.jpg",
    "http://evil.example/x.jpg",
    "C:\\dir\\x.jpg",
    "-dash/_under.jpg",
]


@pytest.fixture(autouse=True)
def fresh_caches():
    cards.clear_cache()
    yield
    cards.clear_cache()


def field_file(name, storage=None):
    field = ImageAsset._meta.get_field("thumbnail")
    if storage is not None:
        field = field.clone()
        field.storage = storage
    return FieldFile(ImageAsset(), field, name)


@pytest.mark.parametrize(
    "media_url", ["/media/", "/m", "https://cdn.example.com/media/", "//cdn.example.com/m/"]
)
def test_a_thumbnails_url_is_what_its_storage_writes(settings, media_url):
    settings.MEDIA_URL = media_url
    for name in NAMES:
        file = field_file(name)
        assert jinja_env.file_url(file) == file.url, name


def test_another_storage_writes_its_own_urls():
    file = field_file("thumbs/x.jpg", InMemoryStorage(base_url="/mem/"))
    assert jinja_env.file_url(file) == file.url == "/mem/thumbs/x.jpg"
    with pytest.raises(ValueError, match="no file"):
        jinja_env.file_url(field_file(""))


def groups(counts, checked=()):
    page = SearchPage(
        mode="text",
        facets={
            "store": [FacetRow("o-brien", "O'Brien & Sons", counts[0]), FacetRow("b", "<b>", 1)],
            "brand": [FacetRow('Tom "T"', 'Tom "T"', counts[1])],
            "colour": [FacetRow("red\ue000", "Red \ue000 marker", counts[2])],
        },
    )
    return facet_groups(page, SearchFilters(brands=tuple(checked)))


def test_a_facet_option_from_the_cache_is_the_option_rendered_afresh():
    django_loop = engines["django"].from_string(DJANGO_FACETS)
    for counts, checked in [
        ((3, 12, 1), ()),
        ((4, 1234567, 0), ()),  # the same options, other counts: from the cache
        ((4, 12, 5), ('Tom "T"',)),  # ticked: another option
        ((3, 12, 1), ()),
    ]:
        expected = django_loop.render({"facet_groups": groups(counts, checked)})
        assert cards.render_facet_groups(groups(counts, checked)) == expected
    assert "\ue000" in expected  # the marker in a value: rendered whole, not split
    # "b", Tom unticked and ticked, O'Brien, red; and the three groups' starts and ends
    assert len(cards._facet_options) == 4 + 1 + 3


@pytest.mark.parametrize("language", ["en-us", "de", "fr"])
def test_floatformat_from_the_cache_is_djangos(language):
    values = [Decimal("1234.5"), Decimal("1234.50"), Decimal("-0.5"), 2.675, 0.1, 7, "3.14159"]
    with translation.override(language):
        for arg in ("0", 2, -2, "4", "3g"):
            for value in values:
                for _ in range(2):  # the second from the cache
                    assert jinja_env._floatformat(value, arg) == floatformat(value, arg)
    assert jinja_env._floatformat([1], 2) == floatformat([1], 2)  # unhashable: not kept


def test_a_value_is_escaped_once_as_django_escapes_it():
    env = jinja_env.environment()
    text = "<a href='x'>\"&amp;\" &#39;</a>"
    django = engines["django"].from_string("{{ x }}|{{ x|urlencode }}|{{ n }}|{{ s }}")
    jinja = env.from_string("{{ x }}|{{ x|urlencode }}|{{ n }}|{{ s }}")
    context = {"x": text, "n": 42, "s": jinja_env.Markup("<b>safe</b>")}
    assert jinja.render(context) == django.render(context)
    for value in (None, True, -7, 2**70, "", "é'\"<>&", mark_safe("<i>"), gettext_lazy("Home")):
        assert jinja_env.django_escape(value) == conditional_escape(value), value


@pytest.mark.django_db
def test_cards_and_their_links_follow_the_script_prefix():
    page = SearchPage(mode="text")
    [hit, *_] = hits()
    plain = cards.render_cards([hit], page=page)
    set_script_prefix("/shop/")
    try:
        prefixed = cards.render_cards([hit], page=page)
        assert prefixed == cards._render(hit, page, False)
    finally:
        set_script_prefix("/")
    assert f'href="/products/{hit.product.pk}' in plain
    assert 'href="/shop/' in prefixed
    assert prefixed.replace('href="/shop/', 'href="/') == plain
    assert cards.render_cards([hit], page=page) == plain  # each prefix its own cached card


def test_the_lru_forgets_the_least_recently_used():
    lru = cards._LRU(2)
    lru["a"], lru["b"] = 1, 2
    assert lru.get("a") == 1  # "b" is now the oldest
    lru["c"] = 3
    assert (lru.get("a"), lru.get("b"), lru.get("c"), len(lru)) == (1, None, 3, 2)


PRICES = [
    (Decimal("12.5"), Decimal("15"), Decimal("20"), "EUR"),
    (Decimal("12.50"), None, None, "EUR"),
    (Decimal("12.5"), None, None, "EUR"),  # == the one above, printed apart
    (Decimal("2490"), None, Decimal("2990"), "JPY"),
    (Decimal("1234.5"), Decimal("1234.5"), Decimal("1"), "KWD"),
    (Decimal("9.99"), None, None, ""),
    (None, None, Decimal("5"), "EUR"),
    (7, 9.5, None, "USD"),
]


@pytest.mark.parametrize("language", ["en-us", "de"])
def test_a_price_from_the_cache_is_the_macro_rendered_afresh(settings, language):
    settings.LANGUAGE_CODE = language
    macro = jinja_env.environment().get_template("partials/_price.html").module.price_html
    for _ in range(2):  # the second from the cache
        for price in PRICES:
            assert jinja_env.price_html(*price) == macro(*price), price
    assert jinja_env._prices.cache_info().currsize == len(PRICES)  # 12.5 and 12.50 apart


def test_an_amount_from_the_cache_is_the_one_computed_afresh():
    from search import prices
    from search.templatetags.prices import amount

    for value in (Decimal("12.5"), Decimal("12.50"), Decimal("0.125"), "3.3", 4, None, ""):
        for currency in ("EUR", "JPY", "KWD", ""):
            for _ in range(2):
                assert amount(value, currency) == (prices.amount(value, currency) or "")
