"""Template filters for prices (see search.prices): `{{ p.price|money:p.currency }}` writes
"€1,234.50"; `{{ p.price|amount:p.currency }}` the plain "1234.50" for data attributes (kept
per exact value text and currency: every result card writes one).

`money` writes what Babel writes (search.prices.money), but a price Babel never formatted costs
it ~40 µs, most of a result card never seen before (at 1 M products nearly every card is one).
So for each currency and language Babel formats one probe, its shape is read off (what comes
before and after the digits, the group and decimal marks) and checked against Babel on a few
more values; a non-negative Decimal with no more decimals than the currency has is then written
in that shape. Anything else (other grouping rules, a sign, rounding, no currency) is Babel's.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

from babel.numbers import get_currency_precision
from django import template
from django.conf import settings

from search import prices

register = template.Library()


@register.filter
def money(value, currency: str = "") -> str:
    if type(value) is Decimal and currency and value.is_finite() and not value.is_signed():
        shape = _shape(currency, settings.LANGUAGE_CODE)
        if shape is not None:
            fast = _written(value, shape)
            if fast is not None:
                return fast
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


# Babel's output is checked on these as well as on the probe before the shape is trusted.
_CHECKS = ["0", "0.5", "1", "7.25", "12", "123.4", "1234", "12345.6", "999999.99", "1000000"]


@lru_cache(maxsize=256)
def _shape(currency: str, language: str) -> tuple | None:
    """(before, group mark, decimal mark, after, decimals) of this currency's prices in this
    language, or None when they do not follow one shape."""
    decimals = get_currency_precision(currency)
    fraction = "97531"[:decimals]
    probe = prices.money(Decimal("1234567" + ("." + fraction if decimals else "")), currency)
    found = re.fullmatch(
        r"(\D*)1(?P<group>\D+)234(?P=group)567"
        + (r"(\D+)" + fraction if decimals else "()")
        + r"(\D*)",
        probe,
    )
    if found is None:
        return None
    before, group, mark, after = found.groups()
    shape = (before, group, mark, after, decimals)
    for text in _CHECKS:
        value = Decimal(text)
        written = _written(value, shape)  # None: one Babel would round, left to Babel
        if written is not None and written != prices.money(value, currency):
            return None
    return shape


def _written(value: Decimal, shape: tuple) -> str | None:
    before, group, mark, after, decimals = shape
    if decimals not in _STEPS or value.adjusted() > 15:
        return None
    exact = value.quantize(_STEPS[decimals])
    if exact != value:  # Babel would round: leave it to Babel
        return None
    whole, _, fraction = format(exact, "f").partition(".")
    digits = f"{int(whole):,}".replace(",", group)
    return f"{before}{digits}{mark}{fraction}{after}" if decimals else f"{before}{digits}{after}"


_STEPS = {n: Decimal(1).scaleb(-n) for n in range(5)}
