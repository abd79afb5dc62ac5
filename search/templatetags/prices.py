"""Template filters for prices (see search.prices): `{{ p.price|money:p.currency }}` writes
"€1,234.50"; `{{ p.price|amount:p.currency }}` the plain "1234.50" for data attributes (kept
per exact value text and currency: every result card writes one)."""

from __future__ import annotations

from functools import lru_cache

from django import template

from search import prices

register = template.Library()


@register.filter
def money(value, currency: str = "") -> str:
    return prices.money(value, currency)


@register.filter
def amount(value, currency: str = "") -> str:
    if value is None or value == "":
        return ""
    # Keyed by the exact text of the value: Decimal("1.0") == Decimal("1.00") may differ.
    return _amount(type(value), str(value), currency)


@lru_cache(maxsize=8192)
def _amount(kind: type, text: str, currency: str) -> str:
    return prices.amount(kind(text), currency) or ""
