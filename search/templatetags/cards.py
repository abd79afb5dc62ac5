"""`{% product_card hit %}`: one result card, rendered by Jinja2 (search.cards)."""

from __future__ import annotations

from django import template

from search import cards

register = template.Library()


@register.simple_tag(takes_context=True)
def product_card(context, hit):
    return cards.render_card(hit, page=context.get("page"), debug=bool(context.get("debug")))
