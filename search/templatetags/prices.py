"""Template filters for prices: "€1,234.50", "¥2,490", "KWD1,234.500".

Currency symbols, decimals per currency (none for JPY, three for KWD) and separators come from
Babel's CLDR data for the site's LANGUAGE_CODE, not from rules written here.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache

from babel.core import UnknownLocaleError
from babel.numbers import format_currency, format_decimal
from django import template
from django.conf import settings
from django.utils.translation import to_locale

register = template.Library()


@cache
def _locale(language_code: str) -> str:
    from babel import Locale

    try:
        return str(Locale.parse(to_locale(language_code)))
    except (UnknownLocaleError, ValueError):
        return "en_US"


@register.filter
def money(value: Decimal | None, currency: str = "") -> str:
    """`{{ product.price|money:product.currency }}`: "" for no price."""
    if value is None or value == "":
        return ""
    locale = _locale(settings.LANGUAGE_CODE)
    if not currency:
        return format_decimal(value, locale=locale)
    return format_currency(value, currency, locale=locale)
