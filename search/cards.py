"""Result cards rendered with Jinja2: the one part of a results page written 24 times a page.

Jinja2 compiles templates to Python and writes 24 cards in about half the CPU time of Django's
template engine (docs/search.md "Rendering", bench/render.py). The results page around them is
Jinja2 too (search.page_render calls `result_cards(hits)` and `facet_group_list(groups)` here);
the Django pages (product, photo search) call `{% product_card hit %}` and `{% result_cards %}`
(search.templatetags.cards).

The cards are byte-identical to what the Django card wrote (tests/search/test_cards.py renders
both over the same hits): the environment (search.jinja_env) escapes and formats every value as
Django does. Templates live in templates/jinja2/partials/. A card kept in the cache below is
written by search.card_html, what the card template writes for it (without ?debug=1) at a
third of Jinja2's cost (tests/search/test_card_html.py holds both to the same bytes); ?debug=1
and DEBUG render the template itself.

A card rendered once is kept (per process, LRU) under everything it shows (`card_key`: the
product's shown columns, its picture, variant, offers, the page's mode, the site's language and
URL prefix), so the same product in the next query's results costs a key, not a render; a
product whose price, title or stock changed has another key and is rendered afresh. What every
card of a page shares (its mode, links, the card macro) is looked up once a page. The facet
options are written here too, each rendered once and then written around its count.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, NamedTuple

from django.conf import settings
from django.core.signals import setting_changed
from django.urls import get_script_prefix, get_urlconf
from django.utils.safestring import SafeString, mark_safe
from jinja2 import pass_context
from markupsafe import Markup

from search import jinja_env
from search.card_html import write_card
from search.jinja_env import (
    django_escape,
    environment,
    id_url,
    url,  # noqa: F401  (re-exported: cards.url)
)

CARD_TEMPLATE = "partials/_product_card.html"
CARDS_TEMPLATE = "partials/_result_cards.html"
FACET_GROUPS_TEMPLATE = "partials/_facet_groups.html"
# Rendered cards kept per process (about 1.5 kB each): a few pages' worth of every popular query.
CARD_CACHE_SIZE = 4096
# Rendered facet options kept per process (about 600 B each): the values of a few hundred pages.
FACET_CACHE_SIZE = 4096


@pass_context
def result_cards(context, hits) -> Markup:
    """`{{ result_cards(page.hits) }}` in a results page: the page's cards, as render_cards."""
    page, debug = context.get("page"), bool(context.get("debug"))
    return Markup(render_cards(hits, page=page, debug=debug))


def facet_group_list(groups: list[dict]) -> Markup:
    """`{{ facet_group_list(facet_groups) }}` in a results page: as render_facet_groups."""
    return Markup(render_facet_groups(groups))


def render_card(hit, *, page=None, debug: bool = False) -> SafeString:
    """One result card's HTML for a `SearchHit` (`page.mode` says whether to explain the match)."""
    return mark_safe(_card(hit, page, debug, _shared(page)))


def render_cards(hits, *, page=None, debug: bool = False, headings: bool = True) -> SafeString:
    """The cards of `hits` in order, each `starts_similar` hit after the "Similar looking items"
    heading when `headings` (a text search's results list)."""
    shared = _shared(page)
    heading = _similar_heading() if headings else ""
    parts = []
    for hit, html in zip(hits, _cards(hits, page, debug, shared), strict=True):
        if heading and hit.starts_similar:
            parts.append(heading)
        parts.append(html)
    return mark_safe("".join(parts))


def _similar_heading() -> str:
    """The "Similar looking items" heading, written once per template load (DEBUG: each page)."""
    found = None if settings.DEBUG else _macros.get(CARDS_TEMPLATE)
    if found is None:
        module = environment().get_template(CARDS_TEMPLATE).module
        found = _macros[CARDS_TEMPLATE] = str(module.similar_heading())
    return found


class _Shared(NamedTuple):
    """What the cards of one page share, looked up once a page (the script prefix and URLconf
    are per request): the part of each card's key, its product links, the card macro, whether
    cards are kept (not under DEBUG: templates may change)."""

    key: tuple
    product_url: Callable[[Any], str]
    macro: Callable[..., str]
    keep: bool


def _shared(page) -> _Shared:
    prefix, urlconf = get_script_prefix(), get_urlconf()
    mode = getattr(page, "mode", None)
    return _Shared(
        (mode == "text", settings.LANGUAGE_CODE, prefix, urlconf),
        id_url("search:product", prefix, urlconf),
        _card_macro(),
        not settings.DEBUG,
    )


def render_facet_groups(groups: list[dict]) -> SafeString:
    """The facet groups' fieldsets (search.page_context.facet_groups) of the filters sidebar.

    About 50 options a page, each the same markup but for its count from one query to the next:
    an option is rendered once (per process, LRU) with a marker for its count, and written as
    the text around the marker with the count in between; a group's start and end are kept
    too. All of a page's pieces are looked up under the lock at once."""
    keys = []
    for group in groups:
        keys.append(("<group>", group["name"], group["label"]))
        keys += (_option_key(group, option) for option in group["options"])
    with _lock:
        found = [_facet_options.get(key) for key in keys]
    parts, new, macros = [], {}, None
    pieces = iter(zip(keys, found, strict=True))
    for group in groups:
        key, start = next(pieces)
        if start is None:
            macros = macros or _facet_macros()
            start = new[key] = (str(macros.group_start(group)), str(macros.group_end()))
        parts.append(start[0])
        for option in group["options"]:
            key, halves = next(pieces)
            if halves is None:
                macros = macros or _facet_macros()
                marked = str(macros.option(group, option, Markup(_COUNT)))
                halves = new[key] = tuple(marked.split(_COUNT))
            if len(halves) == 2:
                parts += (halves[0], django_escape(option["count"]), halves[1])
            else:  # the marker in a value: rendered whole
                macros = macros or _facet_macros()
                parts.append(str(macros.option(group, option, option["count"])))
        parts.append(start[1])
    if new and not settings.DEBUG:  # templates may change under DEBUG
        with _lock:
            for key, value in new.items():
                _facet_options[key] = value
    return mark_safe("".join(parts))


def _option_key(group: dict, option: dict) -> tuple:
    return (group["name"], option["value"], option["label"], option["checked"], option["id"])


def _facet_macros():
    return environment().get_template(FACET_GROUPS_TEMPLATE).module


_COUNT = "\ue000"  # a private-use character: the count's place in a rendered option


def _card(hit, page, debug: bool, shared: _Shared) -> str:
    return _cards([hit], page, debug, shared)[0]


def _cards(hits, page, debug: bool, shared: _Shared) -> list[str]:
    """The cards of `hits`: those kept looked up, the others written (search.card_html) and
    kept, the lock taken twice a page rather than twice a card."""
    # Every value in them went through django_escape; the markup is the template's own.
    hits = list(hits)
    if debug or not shared.keep:  # scores differ per query; templates may change under DEBUG
        return [_render(hit, page, debug, shared) for hit in hits]
    keys = [card_key(hit, None, shared.key) for hit in hits]
    with _lock:
        found = [_cache.get(key) for key in keys]
    new = {}
    for n, html in enumerate(found):
        if html is None:
            hit = hits[n]
            found[n] = new[keys[n]] = write_card(hit, shared.key[0], shared.product_url)
    if new:
        with _lock:
            for key, html in new.items():
                _cache[key] = html
    return found


def _render(hit, page, debug: bool, shared: _Shared | None = None) -> str:
    shared = shared or _shared(page)
    return str(shared.macro(hit, page, debug, shared.product_url))


def _card_macro():
    """The card template's `card` macro, looked up once per template load (DEBUG: each page)."""
    found = None if settings.DEBUG else _macros.get(CARD_TEMPLATE)
    if found is None:
        found = _macros[CARD_TEMPLATE] = environment().get_template(CARD_TEMPLATE).module.card
    return found


_macros: dict[str, Any] = {}


def card_key(hit, mode: str | None, shared: tuple | None = None) -> tuple:
    """Everything a card (without ?debug=1) shows: two hits with the same key render alike.
    `shared`: the page's part (`_shared(page).key`), else made from `mode` and the request.

    Prices are keyed by their text (Decimal("1.0") == Decimal("1.00") but may print apart)."""
    if shared is None:
        shared = _shared(SimpleNamespace(mode=mode)).key
    product, image, variant, offers = hit.product, hit.image, hit.variant, hit.offers
    asset = image.asset if image is not None else None
    return (
        product.pk, product.title, product.store.name, product.brand,
        f"{product.price} {product.price_max} {product.list_price}", product.currency,
        product.availability, image is not None,
        None if asset is None else (asset.placeholder, _file_name(asset, "thumbnail"), asset.width, asset.height),
        None if variant is None else (
            variant.external_id, variant.label, f"{variant.price} {variant.list_price}",
            variant.availability,
        ),
        _offers_key(hit) if offers else None, hit.matches_words, shared,
    )  # fmt: skip


def _offers_key(hit) -> tuple:
    offer = hit.cheapest_offer
    return hit.other_stores, None if offer is None else (str(offer.price), offer.currency)


def _file_name(instance, attname: str) -> str:
    """`instance.<attname>.name` without the file descriptor making a FieldFile (a card key is
    made for every card of every page): the loaded name, or the file's once one was made."""
    value = instance.__dict__.get(attname)
    return getattr(value, "name", value) if value is not None else getattr(instance, attname).name


class _LRU:
    """A dict that forgets its least recently used entries past `size`, on OrderedDict's C
    methods: a lookup costs a third of cachetools.LRUCache's, and a page makes 70 of them.
    Not thread-safe: callers hold `_lock`."""

    def __init__(self, size: int) -> None:
        self._data: OrderedDict = OrderedDict()
        self._size = size

    def get(self, key: Any) -> Any:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self._size:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()


_cache = _LRU(CARD_CACHE_SIZE)
_facet_options = _LRU(FACET_CACHE_SIZE)
_lock = threading.Lock()


def clear_cache(**_: Any) -> None:
    """Forget rendered cards (tests; any settings change: URLs, media URL, language)."""
    with _lock:
        _cache.clear()
        _facet_options.clear()
        _macros.clear()
    jinja_env.clear_caches()


setting_changed.connect(clear_cache, dispatch_uid="search.cards.clear_cache")
