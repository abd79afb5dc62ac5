"""The Jinja2 environment of the results page and its cards (search.page_render, search.cards).

Built once per process over templates/jinja2/. What the Django templates it replaces wrote, it
writes: every value escaped as Django's `conditional_escape` escapes it (`django_escape`, not
markupsafe's escape, which writes `&#39;` where Django writes `&#x27;`), Django's filters under
Django's names (`urlencode`, `pluralize`, `floatformat`, `join`, `default_if_none`) and the
site's (`money`, `amount`), links as `reverse` writes them (`url`, `id_url`) and files' URLs as
their storage writes them (`file_url`). The rest is speed, each piece measured by
bench/render.py and pinned by the comparisons in tests/search/test_cards.py and
tests/search/test_page_render.py: reversed URLs, prices and formatted numbers kept per process,
thumbnails' URLs without urljoin, and `{{ value }}` compiled without markupsafe's second pass
over what `django_escape` already escaped.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage, storages
from django.core.signals import setting_changed
from django.template import defaultfilters
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.translation import get_language
from jinja2 import Environment, FileSystemLoader
from jinja2.compiler import CodeGenerator
from markupsafe import Markup

from search.templatetags.prices import amount, money


def django_escape(value: Any) -> Markup:
    """Django's escaping of a rendered value (`conditional_escape`): safe strings kept, anything
    else through `html.escape` as `django.utils.html.escape` does (`&quot;`, `&#x27;`), made
    Markup by str's constructor (Markup's own costs four times as much)."""
    kind = type(value)
    if kind is str:
        return _markup(_escape_str(value))
    if kind is Markup:
        return value
    if kind is int:  # counts, sizes, ids: nothing to escape (Django writes str(int) too)
        return _markup(str(value))
    if hasattr(value, "__html__"):
        return Markup(value.__html__())
    return _markup(html.escape(str(value)))


_markup = functools.partial(str.__new__, Markup)


def _escape_str(text: str) -> str:
    """`html.escape(text)`: markupsafe's C escaping (half the CPU: a page escapes ~300 values)
    with its two numeric entities written as Django writes them. Exact: in its output every
    "&" starts an entity it wrote, so "&#39;" and "&#34;" are only ever its own."""
    out = _escape_inner(text)
    if "&#" in out:
        out = out.replace("&#39;", "&#x27;").replace("&#34;", "&quot;")
    return out


try:  # markupsafe's compiled escaping, where it is built (its pure-Python one is slower)
    from markupsafe._speedups import _escape_inner
except ImportError:  # pragma: no cover
    _escape_str = html.escape


def url(name: str, *args: Any) -> str:
    """`reverse(name, args=args)`, the site's fixed links reversed once per name, URLconf and
    script prefix (the results page's form actions), one id's link as `id_url` writes it."""
    prefix, urlconf = get_script_prefix(), get_urlconf()
    if not args:
        key = (name, prefix, urlconf)
        found = _urls.get(key)
        if found is None:
            found = _urls[key] = reverse(name)
        return found
    if len(args) == 1:
        return id_url(name, prefix, urlconf)(args[0])
    return reverse(name, args=args)


def id_url(name: str, prefix: str, urlconf: Any) -> Callable[[Any], str]:
    """`reverse(name, args=[id])` as a function of the id, for one script prefix and URLconf (a
    page's cards). The URL is reversed once with a sentinel id and the id written in its place:
    what the resolver writes for an int below 10**18 (an int converter writes `str(id)`), without
    resolving 24 times a page; anything else is resolved."""
    key = (name, prefix, urlconf)
    parts = _url_parts.get(key)
    if parts is None:
        try:
            parts = tuple(reverse(name, args=[_SENTINEL]).split(str(_SENTINEL)))
        except NoReverseMatch:  # a converter narrower than 19 digits: always resolve
            parts = ()
        _url_parts[key] = parts
    if len(parts) != 2:
        return lambda pk: reverse(name, args=[pk])
    before, after = parts
    return lambda pk: (
        f"{before}{pk}{after}"
        if type(pk) is int and 0 <= pk < _MAX_FAST_ID
        else reverse(name, args=[pk])
    )


def file_url(file) -> str:
    """`file.url`. For a plain relative name (the pipeline's `thumbs/ab/cd/<sha256>.jpg`) in the
    default file-system storage, its base URL and the name: what `urljoin(base_url, name)`
    writes there, without urljoin (a third of a card's rendering)."""
    name = file.name
    if file.storage is default_storage and name and _PLAIN_NAME.fullmatch(name):
        base = _plain_base()
        if base:
            return base + name
    return file.url


def _plain_base() -> str:
    """The default storage's base URL if it is a FileSystemStorage's ending in "/", else ""."""
    found = _bases.get("default")
    if found is None:
        storage = storages["default"]
        base = storage.base_url if type(storage) is FileSystemStorage else None
        found = _bases["default"] = base if base and base.endswith("/") else ""
    return found


def price_html(price: Any, price_max: Any, list_price: Any, currency: str) -> Markup:
    """The `price_html` macro of partials/_price.html, kept per process for each exact price
    text, currency and language: shoppers see the same few thousand prices over and over."""
    if settings.DEBUG:  # templates may change under DEBUG
        return _price_macro()(price, price_max, list_price, currency)
    # Keyed by each value's exact text: Decimal("1.0") == Decimal("1.00") prints apart.
    return _prices(
        None if price is None else (type(price), str(price)),
        None if price_max is None else (type(price_max), str(price_max)),
        None if list_price is None else (type(list_price), str(list_price)),
        currency,
        settings.LANGUAGE_CODE,
    )


@lru_cache(maxsize=8192)
def _prices(price, price_max, list_price, currency: str, language: str) -> Markup:
    # Each value made again from its exact text, so the key alone decides what is written.
    values = [None if v is None else v[0](v[1]) for v in (price, price_max, list_price)]
    return _price_macro()(*values, currency)


def _price_macro():
    """The price macro, looked up once per template load (a miss costs a third of a price)."""
    found = None if settings.DEBUG else _macros.get(PRICE_TEMPLATE)
    if found is None:
        found = _macros[PRICE_TEMPLATE] = (
            environment().get_template(PRICE_TEMPLATE).module.price_html
        )
    return found


# Segments of letters, digits, "_", "-" and "." that never start with ".": nothing that
# filepath_to_uri quotes or urljoin resolves ("..", "./", "//", a scheme, a leading "/").
_PLAIN_NAME = re.compile(r"(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*")
_SENTINEL, _MAX_FAST_ID = 987654321987654321, 10**18  # ids below any converter's digit limit
_url_parts: dict[tuple, tuple[str, ...]] = {}
_macros: dict[str, Any] = {}
_urls: dict[tuple, str] = {}
_bases: dict[str, str] = {}
PRICE_TEMPLATE = "partials/_price.html"


class _CodeGenerator(CodeGenerator):
    """Compiles `{{ value }}` to `django_escape(value)` where Jinja2 writes
    `escape(django_escape(value))`: `django_escape` (the environment's finalize) always returns
    Markup, which markupsafe's escape would only copy again (an eighth of a card's rendering).
    Any other case (no autoescape, `{% autoescape %}` blocks) is Jinja2's own."""

    def _output_child_pre(self, node, frame, finalize) -> None:
        if frame.eval_ctx.volatile or not frame.eval_ctx.autoescape or finalize.src is None:
            super()._output_child_pre(node, frame, finalize)
        else:
            self.write("(" + finalize.src)


class _Environment(Environment):
    code_generator_class = _CodeGenerator


@cache
def environment() -> Environment:
    env = _Environment(
        loader=FileSystemLoader(settings.BASE_DIR / "templates" / "jinja2"),
        autoescape=True,
        keep_trailing_newline=True,
        finalize=django_escape,
        auto_reload=settings.DEBUG,
    )
    env.globals.update(url=url, file_url=file_url, price_html=price_html)
    env.filters.update(
        default_if_none=_default_if_none,
        join=defaultfilters.join,
        urlencode=defaultfilters.urlencode,
        pluralize=defaultfilters.pluralize,
        floatformat=_floatformat,
        money=money,
        amount=amount,
    )
    return env


def _floatformat(value: Any, arg: Any = -1) -> str:
    """Django's floatformat (a Decimal's quantize and number_format: 40 µs), remembered per
    value, argument and active language."""
    try:
        return _floatformats(type(value), value, arg, get_language())
    except TypeError:  # unhashable
        return defaultfilters.floatformat(value, arg)


@lru_cache(maxsize=4096)
def _floatformats(kind: type, value: Any, arg: Any, language: str) -> str:
    return defaultfilters.floatformat(value, arg)


def _default_if_none(value: Any, arg: Any) -> Any:
    return arg if value is None else value


def clear_caches(**_: Any) -> None:
    """Forget reversed URLs, storage URLs, prices and numbers (tests; any settings change)."""
    _url_parts.clear()
    _urls.clear()
    _bases.clear()
    _macros.clear()
    _floatformats.cache_clear()
    _prices.cache_clear()


setting_changed.connect(clear_caches, dispatch_uid="search.jinja_env.clear_caches")
