"""Result cards and facet options in Django templates, rendered by Jinja2 (search.cards):
`{% product_card hit %}` one card (product page), `{% result_cards page.hits %}` a results list
(with the "Similar looking items" heading; `headings=False` without: photo search),
`{% facet_group_list facet_groups %}` the facet fieldsets (the Django results page kept as
tests/search/reference/; the site's results page is Jinja2 throughout: search.page_render)."""

from __future__ import annotations

from django import template

from search import cards

register = template.Library()


@register.simple_tag(takes_context=True)
def product_card(context, hit):
    return cards.render_card(hit, page=context.get("page"), debug=bool(context.get("debug")))


@register.simple_tag(takes_context=True)
def result_cards(context, hits, headings=True):
    page, debug = context.get("page"), bool(context.get("debug"))
    return cards.render_cards(hits, page=page, debug=debug, headings=headings)


@register.simple_tag
def facet_group_list(groups):
    return cards.render_facet_groups(groups)
