"""Search input validation: what is an error (bad parameters) and what is just a query."""

from decimal import Decimal

import pytest

from search.forms import SearchForm, sniff_format


def test_any_text_is_a_valid_query():
    form = SearchForm({"q": "x" * 10_000})
    assert form.is_valid()


def test_filters_become_search_filters():
    from django.http import QueryDict

    data = QueryDict("q=lamp&brand=A&brand=B&brand=A&store=s1&min_price=5&in_stock=on")
    form = SearchForm(data)
    assert form.is_valid(), form.errors
    filters = form.filters()
    assert filters.brands == ("A", "B")
    assert filters.stores == ("s1",)
    assert filters.min_price == Decimal("5")
    assert filters.in_stock is True


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"min_price": "-1"}, "min_price"),
        ({"max_price": "1e400"}, "max_price"),
        ({"page": "abc"}, "page"),
        ({"page": "101"}, "page"),
        ({"min_price": "9", "max_price": "3"}, "max_price"),
        # PostgreSQL refuses NUL in text (a 500 there); no product has one anyway.
        ({"store": "a\x00b"}, "store"),
    ],
)
def test_bad_parameters_are_named(data, field):
    form = SearchForm(data)
    assert not form.is_valid()
    assert field in form.errors


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"\xff\xd8\xff\xe0", "JPEG"),
        (b"\x89PNG\r\n\x1a\n....", "PNG"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WEBP"),
        (b"GIF89a", None),
        (b"<svg", None),
    ],
)
def test_sniff_format_accepts_only_jpeg_png_webp(head, fmt):
    assert sniff_format(head) == fmt
