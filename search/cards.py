"""Result cards rendered with Jinja2: the one part of a results page written 24 times a page.

Jinja2 compiles templates to Python and writes 24 cards in about half the CPU time of Django's
template engine (docs/search.md "Rendering", bench/render.py). The results page around them is
Jinja2 too (search.page_render, in this environment: `result_cards(hits)`, `facet_group_list`);
the Django pages (product, photo search) call `{% product_card hit %}` and `{% result_cards %}`
(search.templatetags.cards).

The cards are byte-identical to what the Django card wrote (tests/search/test_cards.py renders
both over the same hits): every value is escaped as Django's `conditional_escape` escapes it
(markupsafe writes `&#39;` where Django writes `&#x27;`: `_escape` respells the two), and the
filters are Django's (`urlencode`, `pluralize`, `floatformat`) or the site's (`money`,
`amount`). Templates live in templates/jinja2/; the environment is built once per process.

A card rendered once is kept (per process, LRU) under everything it shows (`card_key`: the
product's shown columns, its picture, variant, offers, the page's mode, the site's language), so
the same product in the next query's results costs a key, not a render; a product whose price,
title or stock changed has another key and is rendered afresh. The result list (cards and the
"Similar looking items" heading) and the facet options are written here too: the two loops of a
results page, which cost Django's template engine most of a page's rendering.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from cachetools import LRUCache
from django.conf import settings
from django.core.signals import setting_changed
from django.template import defaultfilters
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.safestring import SafeString, mark_safe
from jinja2 import Environment, FileSystemLoader, pass_context
from markupsafe import Markup
from markupsafe import escape as markupsafe_escape

from search.templatetags.prices import amount, money

CARD_TEMPLATE = "partials/_product_card.html"
CARDS_TEMPLATE = "partials/_result_cards.html"
FACET_GROUPS_TEMPLATE = "partials/_facet_groups.html"
# Rendered cards kept per process (about 1.5 kB each): a few pages' worth of every popular query.
CARD_CACHE_SIZE = 4096


def _escape(value: Any) -> Markup:
    """Django's escaping of a rendered value (`conditional_escape`: safe strings kept, `&quot;`
    and `&#x27;`), through markupsafe's C escaper, which spells those two `&#34;` and `&#39;`."""
    kind = type(value)
    if kind is Markup:
        return value
    if kind is int:  # counts, sizes: nothing to escape (Django writes str(int) too)
        return Markup(value)
    if hasattr(value, "__html__"):
        return Markup(value.__html__())
    text = markupsafe_escape(value)
    if "&#" in text:  # a literal "&#34;" in the value was escaped to "&amp;#34;": never matched
        return Markup(str(text).replace("&#34;", "&quot;").replace("&#39;", "&#x27;"))
    return text


def url(name: str, *args: Any) -> str:
    """`reverse(name, args=args)`. For one id (a card's product link) the URL reversed once per
    name, URLconf and script prefix with a sentinel id, the id written in its place: what the
    resolver would write (an int converter writes `str(id)`), without resolving 24 times a page."""
    if not args:  # the site's fixed links (the results page's form actions): one reverse each
        key = (name, get_script_prefix(), get_urlconf())
        found = _urls.get(key)
        if found is None:
            found = _urls[key] = reverse(name)
        return found
    if len(args) == 1 and type(args[0]) is int and 0 <= args[0] < _MAX_FAST_ID:
        key = (name, get_script_prefix(), get_urlconf())
        parts = _url_parts.get(key)
        if parts is None:
            try:
                parts = tuple(reverse(name, args=[_SENTINEL]).split(str(_SENTINEL)))
            except NoReverseMatch:  # a converter narrower than 19 digits: always resolve
                parts = ()
            _url_parts[key] = parts
        if len(parts) == 2:
            return f"{parts[0]}{args[0]}{parts[1]}"
    return reverse(name, args=args)


_SENTINEL, _MAX_FAST_ID = 987654321987654321, 10**18  # ids below any converter's digit limit
_url_parts: dict[tuple, tuple[str, ...]] = {}
_urls: dict[tuple, str] = {}


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(settings.BASE_DIR / "templates" / "jinja2"),
        autoescape=True,
        keep_trailing_newline=True,
        finalize=_escape,
        auto_reload=settings.DEBUG,
    )
    env.globals.update(url=url, result_cards=_result_cards, facet_group_list=_facet_group_list)
    env.filters.update(
        default_if_none=_default_if_none,
        join=defaultfilters.join,
        urlencode=defaultfilters.urlencode,
        pluralize=defaultfilters.pluralize,
        floatformat=defaultfilters.floatformat,
        money=money,
        amount=amount,
    )
    return env


def _default_if_none(value: Any, arg: Any) -> Any:
    return arg if value is None else value


@pass_context
def _result_cards(context, hits) -> Markup:
    """`{{ result_cards(page.hits) }}` in a results page: the page's cards, as render_cards."""
    page, debug = context.get("page"), bool(context.get("debug"))
    return Markup(render_cards(hits, page=page, debug=debug))


def _facet_group_list(groups: list[dict]) -> Markup:
    return Markup(render_facet_groups(groups))


def render_card(hit, *, page=None, debug: bool = False) -> SafeString:
    """One result card's HTML for a `SearchHit` (`page.mode` says whether to explain the match)."""
    return mark_safe(_card(hit, page, debug))


def render_cards(hits, *, page=None, debug: bool = False, headings: bool = True) -> SafeString:
    """The cards of `hits` in order, each `starts_similar` hit after the "Similar looking items"
    heading when `headings` (a text search's results list)."""
    html = (
        environment()
        .get_template(CARDS_TEMPLATE)
        .render(hits=hits, headings=headings, card=lambda hit: Markup(_card(hit, page, debug)))
    )
    return mark_safe(html)


def render_facet_groups(groups: list[dict]) -> SafeString:
    """The facet groups' fieldsets (search.page_context.facet_groups) of the filters sidebar."""
    return mark_safe(environment().get_template(FACET_GROUPS_TEMPLATE).render(groups=groups))


def _card(hit, page, debug: bool) -> str:
    # Every value in it went through _escape; the markup is the template's own.
    if debug or settings.DEBUG:  # scores differ per query; templates may change under DEBUG
        return _render(hit, page, debug)
    key = card_key(hit, getattr(page, "mode", None))
    with _lock:
        html = _cache.get(key)
    if html is None:
        html = _render(hit, page, debug)
        with _lock:
            _cache[key] = html
    return html


def _render(hit, page, debug: bool) -> str:
    return str(_card_macro()(hit, page, debug))


def _card_macro():
    """The card template's `card` macro (its module is made once per template load)."""
    return environment().get_template(CARD_TEMPLATE).module.card


def card_key(hit, mode: str | None) -> tuple:
    """Everything a card (without ?debug=1) shows: two hits with the same key render alike.

    Prices are keyed by their text (Decimal("1.0") == Decimal("1.00") but may print apart)."""
    product, image, variant = hit.product, hit.image, hit.variant
    asset = image.asset if image is not None else None
    offer = hit.cheapest_offer if hit.offers else None
    return (
        product.pk, product.title, product.store.name, product.brand, str(product.price),
        str(product.price_max), str(product.list_price), product.currency, product.availability,
        image is not None,
        None if asset is None else (asset.placeholder, asset.thumbnail.name, asset.width, asset.height),
        None if variant is None else (
            variant.external_id, variant.label, str(variant.price), str(variant.list_price),
            variant.availability,
        ),
        hit.other_stores, None if offer is None else (str(offer.price), offer.currency),
        mode == "text", hit.matches_words, settings.LANGUAGE_CODE, get_script_prefix(),
    )  # fmt: skip


_cache: LRUCache = LRUCache(CARD_CACHE_SIZE)
_lock = threading.Lock()


def clear_cache(**_: Any) -> None:
    """Forget rendered cards (tests; any settings change: URLs, media URL, language)."""
    with _lock:
        _cache.clear()
    _url_parts.clear()
    _urls.clear()


setting_changed.connect(clear_cache, dispatch_uid="search.cards.clear_cache")
