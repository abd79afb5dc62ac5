"""Result cards rendered with Jinja2: the one part of a results page written 24 times a page.

Jinja2 compiles templates to Python and writes 24 cards in about half the CPU time of Django's
template engine (docs/search.md "Rendering", bench/render.py). The page around the cards stays
a Django template; `{% product_card hit %}` (search.templatetags.cards) renders each card here.

The cards are byte-identical to what the Django card wrote (tests/search/test_cards.py renders
both over the same hits): every value is escaped as Django's `conditional_escape` escapes it
(markupsafe writes `&#39;` where Django writes `&#x27;`: `_escape` respells the two), and the
filters are Django's (`urlencode`, `pluralize`, `floatformat`) or the site's (`money`,
`amount`). Templates live in templates/jinja2/; the environment is built once per process.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.template import defaultfilters
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup
from markupsafe import escape as markupsafe_escape

from search.templatetags.prices import amount, money

CARD_TEMPLATE = "partials/_product_card.html"


def _escape(value: Any) -> Markup:
    """Django's escaping of a rendered value (`conditional_escape`: safe strings kept, `&quot;`
    and `&#x27;`), through markupsafe's C escaper, which spells those two `&#34;` and `&#39;`."""
    if hasattr(value, "__html__"):
        return Markup(value.__html__())
    text = str(markupsafe_escape(value))
    if "&#" in text:  # a literal "&#34;" in the value was escaped to "&amp;#34;": never matched
        text = text.replace("&#34;", "&quot;").replace("&#39;", "&#x27;")
    return Markup(text)


def url(name: str, *args: Any) -> str:
    return reverse(name, args=args)


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(settings.BASE_DIR / "templates" / "jinja2"),
        autoescape=True,
        keep_trailing_newline=True,
        finalize=_escape,
        auto_reload=settings.DEBUG,
    )
    env.globals["url"] = url
    env.filters.update(
        urlencode=defaultfilters.urlencode,
        pluralize=defaultfilters.pluralize,
        floatformat=defaultfilters.floatformat,
        money=money,
        amount=amount,
    )
    return env


def render_card(hit, *, page=None, debug: bool = False) -> SafeString:
    """One result card's HTML for a `SearchHit` (`page.mode` says whether to explain the match)."""
    html = environment().get_template(CARD_TEMPLATE).render(hit=hit, page=page, debug=debug)
    # Every value in it went through _escape; the markup is the template's own.
    return mark_safe(html)
