"""The results page (full page, htmx fragment, "more" fragment) rendered by Jinja2.

A results page is the site's most frequent answer, and Django's template engine cost more CPU to
write it than the ANN search did (docs/search.md "Rendering", bench/render.py). The templates are
templates/jinja2/search/*.html, a line-for-line translation of the Django templates they replace
(tests/search/test_page_render.py renders both and compares), in search.cards' environment:
values escaped as Django escapes them, Django's filters under Django's names.

The layout around the full page is templates/base.html itself, not a copy: Django renders it once
per process (per script prefix and URLconf, and again after any settings change) with markers in
its title and content blocks and an empty header_search block, as the results page has it, and
templates/jinja2/base.html writes the three pieces around its own blocks. The layout holds no
per-request value (no CSRF token, user or nonce: the results page is a GET form under a static
CSP), so one rendering serves every request.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from django.conf import settings
from django.core.signals import setting_changed
from django.template import engines
from django.urls import get_script_prefix, get_urlconf
from markupsafe import Markup

from search.cards import facet_group_list, result_cards
from search.jinja_env import environment

# What the view answers, by request kind (views._render_results): the whole page, the htmx
# answer to the search form, the htmx answer to "more".
TEMPLATES = {
    "html": "search/results.html",
    "htmx": "search/_search_body.html",
    "more": "search/_more.html",
}

_MARK = "\ue000"  # a private-use character: never in base.html, never escaped by Django
_LAYOUT_SOURCE = (
    '{% extends "base.html" %}{% block title %}' + _MARK + "{% endblock %}"
    "{% block header_search %}{% endblock %}{% block content %}" + _MARK + "{% endblock %}"
)


class Layout(NamedTuple):
    """templates/base.html cut around its title and content blocks: what comes before the
    title (head), between the title and the content (body), after the content (foot)."""

    head: Markup
    body: Markup
    foot: Markup


def layout() -> Layout:
    """templates/base.html (without the header's search box) as Django writes it, once per
    script prefix and URLconf (its links are reversed URLs)."""
    key = (get_script_prefix(), get_urlconf())
    found = None if settings.DEBUG else _layouts.get(key)  # DEBUG: base.html may change
    if found is None:
        html = engines["django"].from_string(_LAYOUT_SOURCE).render({})
        head, body, foot = html.split(_MARK)
        found = _layouts[key] = Layout(Markup(head), Markup(body), Markup(foot))
    return found


_layouts: dict[tuple, Layout] = {}


def render_results_page(kind: str, context: dict[str, Any]) -> str:
    """The HTML of a results page of this kind ("html", "htmx" or "more") for the view's
    context (views._render_results)."""
    template = environment().get_template(TEMPLATES[kind])
    extra = {"result_cards": result_cards, "facet_group_list": facet_group_list}
    if kind == "html":
        extra["layout"] = layout()
    return template.render(context, **extra)


def clear_layout(**_: Any) -> None:
    """Forget the rendered layout (tests; any settings change: static files, URLs)."""
    _layouts.clear()


setting_changed.connect(clear_layout, dispatch_uid="search.page_render.clear_layout")
