"""Rendered cards are kept per process (search.cards) and reused only while everything a card
shows is unchanged: a cached card is the card a fresh render writes, and a product whose price,
title, stock, picture, variant or offers changed is rendered afresh. The results list and the
facet options (Jinja2 since the card cache) write what the Django loops they replace wrote."""

from decimal import Decimal

import pytest
from django.template import engines
from django.urls import NoReverseMatch, reverse, set_script_prefix

from catalog.models import ProductVariant
from search import cards, selectors
from search.facets import FacetRow
from search.filters import SearchFilters
from search.page_context import facet_groups
from search.pages import SearchHit, SearchPage
from tests.factories import ProductFactory, ProductImageFactory, StoreFactory
from tests.search.test_cards import REFERENCE, hits

pytestmark = pytest.mark.django_db

# The Django loops the Jinja2 templates replaced (search/templates/search/_results.html and
# _facets.html before), over the reference card.
DJANGO_LIST = '{% load cards %}{% for hit in page.hits %}{% if hit.starts_similar %}<li class="col-span-full pt-2"><h2 class="text-lg font-semibold" data-section="similar">Similar looking items</h2></li>{% endif %}{% include "card" %}{% endfor %}'
DJANGO_FACETS = """{% for group in facet_groups %}
    <fieldset class="fieldset" data-facet="{{ group.name }}">
      <legend class="fieldset-legend">{{ group.label }}</legend>
      {% for option in group.options %}
        <label class="label cursor-pointer justify-between gap-2" for="{{ option.id }}">
          <span class="flex items-center gap-2">
            <input id="{{ option.id }}" type="checkbox" name="{{ group.name }}" value="{{ option.value }}" class="checkbox checkbox-sm" {% if option.checked %}checked{% endif %}>
            <span class="line-clamp-1"><bdi>{{ option.label }}</bdi></span>
          </span>
          <span class="badge badge-ghost badge-sm">{{ option.count }}<span class="sr-only"> results</span></span>
        </label>
      {% endfor %}
    </fieldset>
  {% endfor %}"""


@pytest.fixture(autouse=True)
def fresh_cache():
    cards.clear_cache()
    yield
    cards.clear_cache()


def uncached(hit, page):
    return cards._render(hit, page, False)


@pytest.mark.parametrize("mode", ["text", "image"])
def test_a_cached_card_is_the_card_a_fresh_render_writes(mode):
    page = SearchPage(mode=mode)
    found = hits()
    first = [cards.render_card(hit, page=page) for hit in found]
    assert len(cards._cache) == len(found)
    again = [cards.render_card(hit, page=page) for hit in found]  # all from the cache
    assert again == first == [uncached(hit, page) for hit in found]


def test_debug_cards_are_never_cached():
    hit = hits()[1]
    page = SearchPage(mode="text")
    cards.render_card(hit, page=page, debug=True)
    assert len(cards._cache) == 0
    hit.score += 1
    assert f"{hit.score:.4f}" in cards.render_card(hit, page=page, debug=True)


def _hit(product_id: int, **kwargs) -> SearchHit:
    product = selectors.hydrate_products([product_id], lean=True)[product_id]
    image = product.ready_images[0] if product.ready_images else None
    offers = selectors.offers_for([product])[product_id]
    return SearchHit(product, image, 0.5, 0.3, None, False, offers=offers, **kwargs)


CHANGES = {
    "price": lambda p: setattr(p, "price", Decimal("11.00")),
    "title": lambda p: setattr(p, "title", "Oak lamp, now bigger"),
    "stock": lambda p: setattr(p, "availability", "out_of_stock"),
    "sale": lambda p: setattr(p, "list_price", Decimal("30")),
    "brand": lambda p: setattr(p, "brand", "Other & Co"),
    "currency": lambda p: setattr(p, "currency", "JPY"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_changed_product_never_gets_a_stale_card(change):
    product = ProductFactory(title="Oak lamp", price=Decimal("10.00"), currency="EUR")
    ProductImageFactory(product=product)
    page = SearchPage(mode="text")
    before = cards.render_card(_hit(product.pk), page=page)
    CHANGES[change](product)
    product.save()
    hit = _hit(product.pk)
    after = cards.render_card(hit, page=page)
    assert after == uncached(hit, page)
    assert after != before


def test_prices_are_keyed_by_their_text():
    product = ProductFactory(title="Oak lamp", price=Decimal("10.00"), currency="EUR")
    hit = _hit(product.pk)
    key = cards.card_key(hit, "text")
    hit.product.price = Decimal("10.0")
    assert cards.card_key(hit, "text") != key


def test_a_changed_store_picture_variant_or_offer_is_rendered_afresh():
    store, other = StoreFactory(name="Home"), StoreFactory(name="Other")
    product = ProductFactory(store=store, title="Oak lamp", gtin="0000000000017")
    image = ProductImageFactory(product=product)
    page = SearchPage(mode="text")
    seen = [cards.render_card(_hit(product.pk), page=page)]

    def changed(**kwargs):
        hit = _hit(product.pk, **kwargs)
        html = cards.render_card(hit, page=page)
        assert html == uncached(hit, page)
        assert html not in seen
        seen.append(html)

    store.name = "Home & Garden"
    store.save()
    changed()
    image.asset.width = 321
    image.asset.save()
    changed()
    image.asset.placeholder = "data:image/jpeg;base64,BB"
    image.asset.save()
    changed()
    twin = ProductFactory(store=other, gtin=product.gtin, price=Decimal("3"), currency="EUR")
    changed()
    twin.price = Decimal("2")
    twin.save()
    changed()
    variant = ProductVariant.objects.create(
        product=product, external_id="v1", options={"colour": "Red"}, price=Decimal("7"),
        image=image,
    )  # fmt: skip
    changed(variant=variant)
    variant.options = {"colour": "Blue"}
    variant.save()
    changed(variant=variant)
    variant.availability = "out_of_stock"
    variant.save()
    changed(variant=variant)


def test_the_page_mode_and_the_match_are_part_of_the_key():
    product = ProductFactory(title="Oak lamp")
    ProductImageFactory(product=product)
    hit = _hit(product.pk)
    text, image = SearchPage(mode="text"), SearchPage(mode="image")
    looks = cards.render_card(hit, page=text)
    assert 'data-match="looks"' in looks
    assert 'data-match="' not in cards.render_card(hit, page=image)
    hit.keyword_score = 1.0
    assert 'data-match="words"' in cards.render_card(hit, page=text)
    assert cards.render_card(hit, page=None) == uncached(hit, None)


def test_the_language_is_part_of_the_key(settings):
    product = ProductFactory(title="Oak lamp", price=Decimal("1234.5"), currency="EUR")
    page = SearchPage(mode="text")
    english = cards.render_card(_hit(product.pk), page=page)
    settings.LANGUAGE_CODE = "de"
    german = cards.render_card(_hit(product.pk), page=page)
    assert "1.234,50" in german
    assert german != english


@pytest.mark.parametrize("mode", ["text", "image"])
def test_the_results_list_is_the_django_loop_byte_for_byte(mode):
    found = hits()
    found[2].starts_similar = mode == "text"
    page = SearchPage(mode=mode, hits=found)
    loop = engines["django"].from_string(DJANGO_LIST.replace('{% include "card" %}', REFERENCE))
    expected = loop.render({"page": page, "debug": False})
    assert "Similar looking items" in expected or mode != "text"
    assert cards.render_cards(found, page=page) == expected
    assert cards.render_cards(found, page=page) == expected  # cached cards
    without = cards.render_cards(found, page=page, headings=False)
    assert without == expected.replace(
        '<li class="col-span-full pt-2"><h2 class="text-lg font-semibold" data-section="similar">Similar looking items</h2></li>',
        "",
    )


def test_the_facet_options_are_the_django_loop_byte_for_byte():
    page = SearchPage(
        mode="text",
        facets={
            "store": [FacetRow("o-brien", "O'Brien & Sons", 3), FacetRow("b", "<b>B</b>", 1)],
            "brand": [FacetRow('Tom "T"', 'Tom "T"', 12), FacetRow("ماركة", "ماركة", 2)],
            "colour": [FacetRow("red", "Red", 1234)],
        },
    )
    filters = SearchFilters(brands=('Tom "T"', "gone {{ x }}"))
    groups = facet_groups(page, filters)
    expected = engines["django"].from_string(DJANGO_FACETS).render({"facet_groups": groups})
    assert "checked" in expected
    assert "&#x27;" in expected
    assert "&lt;b&gt;" in expected
    assert cards.render_facet_groups(groups) == expected
    assert cards.render_facet_groups([]) == ""


def test_a_product_link_is_what_reverse_writes():
    for pk in (1, 42, 10**17, 10**18, 2**63 - 1):
        assert cards.url("search:product", pk) == reverse("search:product", args=[pk])
    set_script_prefix("/shop/")
    try:
        assert cards.url("search:product", 7) == reverse("search:product", args=[7])
        assert cards.url("search:product", 7).startswith("/shop/")
    finally:
        set_script_prefix("/")
    assert cards.url("search:product", 7) == reverse("search:product", args=[7])
    with pytest.raises(NoReverseMatch):
        cards.url("search:product", -1)
