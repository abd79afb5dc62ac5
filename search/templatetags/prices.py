"""Template filters for prices (see search.prices): `{{ p.price|money:p.currency }}` writes
"€1,234.50"; `{{ p.price|amount:p.currency }}` the plain "1234.50" for data attributes."""

from __future__ import annotations

from django import template

from search import prices

register = template.Library()


@register.filter
def money(value, currency: str = "") -> str:
    return prices.money(value, currency)


@register.filter
def amount(value, currency: str = "") -> str:
    return prices.amount(value, currency) or ""
