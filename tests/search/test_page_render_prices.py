"""The `money` filter's shortcut (search.templatetags.prices: a price written in the shape Babel
gave a probe) writes what Babel writes, for every currency and language tried, or leaves it to
Babel: random prices, round ones, sub-unit ones, more decimals than the currency has."""

import random
from decimal import Decimal

import pytest
from babel.numbers import format_currency

from search import prices
from search.templatetags import prices as filters

CURRENCIES = ["EUR", "USD", "GBP", "JPY", "KWD", "CHF", "SEK", "INR", "BRL", "CLF", "XXX"]
LANGUAGES = ["en-us", "en-gb", "de", "fr", "es", "it", "nl", "sv", "ja", "hi", "en-in", "ar", "pt-br", "de-ch", "xx"]  # fmt: skip


def values():
    rng = random.Random(13)
    made = [Decimal(t) for t in ("0", "0.01", "0.5", "1", "9.99", "12.5", "12.500", "12.505", "1000", "1234.5", "99999.999", "1000000", "123456789.12", "-5", "-0", "0.001")]  # fmt: skip
    made += [Decimal(rng.randint(0, 10**9)) / Decimal(10) ** rng.randint(0, 3) for _ in range(300)]
    return made


@pytest.mark.parametrize("language", LANGUAGES)
def test_money_writes_what_babel_writes_in_every_language(settings, language):
    settings.LANGUAGE_CODE = language
    locale = prices._locale(language)
    for currency in CURRENCIES:
        for value in values():
            expected = format_currency(value, currency, locale=locale)
            assert filters.money(value, currency) == expected, (language, currency, value)


def test_the_shortcut_is_taken_where_it_can_be(settings):
    settings.LANGUAGE_CODE = "en-us"
    assert filters._shape("EUR", "en-us") == ("€", ",", ".", "", 2)
    assert filters._written(Decimal("1234567.5"), filters._shape("EUR", "en-us")) == "€1,234,567.50"
    assert filters._written(Decimal("1.005"), filters._shape("EUR", "en-us")) is None  # rounds
    assert filters.money(None, "EUR") == ""
    assert filters.money(Decimal("3"), "") == "3"
