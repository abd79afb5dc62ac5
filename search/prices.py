"""Prices as shoppers and API clients read them, in each currency's own minor units.

Stored amounts keep three decimals (KWD, BHD and JOD have fils); JPY, KRW and CLP have none,
EUR two. Babel's CLDR data says which, and how a price is written for the site's LANGUAGE_CODE:
"€1,234.50", "¥2,490", "KWD1,234.500".
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import cache, lru_cache

from babel import Locale
from babel.core import UnknownLocaleError
from babel.numbers import format_currency, format_decimal, get_currency_precision
from django.conf import settings
from django.utils.translation import to_locale


@cache
def _locale(language_code: str) -> Locale:
    # A parsed Locale, not its name: Babel parses a name again on every call (a third of a call).
    try:
        return Locale.parse(to_locale(language_code))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en_US")


def amount(value: Decimal | None, currency: str = "") -> str | None:
    """ "12.99" for EUR, "2490" for JPY, "12.345" for KWD: a plain decimal string, or None."""
    if value is None or value == "":
        return None
    places = get_currency_precision(currency) if currency else 2
    return str(Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def money(value: Decimal | None, currency: str = "") -> str:
    """ "€12.99": the amount with its currency, written for the site's language; "" for None."""
    if value is None or value == "":
        return ""
    # Keyed by the exact text of the value: Decimal("1.0") == Decimal("1.00") but may print apart.
    return _money(type(value), str(value), currency, _locale(settings.LANGUAGE_CODE))


# Babel's formatting is a large share of a card's CPU (docs/benchmarks.md); shoppers see the same
# few thousand prices over and over.
@lru_cache(maxsize=8192)
def _money(kind: type, text: str, currency: str, locale: Locale) -> str:
    value = kind(text)
    if not currency:
        return format_decimal(value, locale=locale)
    return format_currency(value, currency, locale=locale)
