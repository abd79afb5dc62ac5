"""Render cost cuts keep the page the same: prices are formatted by Babel once per value."""

from decimal import Decimal

import pytest
from babel.numbers import format_currency, format_decimal

from search import prices

VALUES = [Decimal("0"), Decimal("1"), Decimal("1.0"), Decimal("1.00"), Decimal("12.345"),
          Decimal("1234.5"), Decimal("1234567.891"), 3.5, 7, "19.90"]  # fmt: skip


@pytest.mark.parametrize("currency", ["EUR", "JPY", "KWD", "USD", ""])
def test_money_writes_what_babel_writes(settings, currency):
    settings.LANGUAGE_CODE = "en-us"
    for value in VALUES:
        expected = (
            format_currency(value, currency, locale="en_US")
            if currency
            else format_decimal(value, locale="en_US")
        )
        assert prices.money(value, currency) == expected, (value, currency)
        assert prices.money(value, currency) == expected  # from the cache: the same


def test_money_follows_the_language(settings):
    settings.LANGUAGE_CODE = "de"
    assert prices.money(Decimal("1234.5"), "EUR") == format_currency(
        Decimal("1234.5"), "EUR", locale="de"
    )
    settings.LANGUAGE_CODE = "en-us"
    assert prices.money(Decimal("1234.5"), "EUR") == "€1,234.50"


def test_a_price_is_formatted_by_babel_once(monkeypatch):
    prices._money.cache_clear()
    calls = []
    real = prices.format_currency
    monkeypatch.setattr(prices, "format_currency", lambda *a, **k: calls.append(a) or real(*a, **k))
    for _ in range(24):
        prices.money(Decimal("9.99"), "EUR")
    assert len(calls) == 1
    assert prices.money(None, "EUR") == ""
