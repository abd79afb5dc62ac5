"""Keyword search keeps one contract on every backend (this file runs in both suites)."""

import pytest

from search import keyword, selectors
from search.keyword import postgres
from search.selectors import SearchFilters
from tests.factories import ProductFactory


def test_postgres_query_text_quotes_every_word_and_keeps_prefix_and_minus_words():
    terms = selectors.fts_match_terms("pillow sof")
    assert postgres.tsquery(terms) == "'pillow' & 'sof':*"
    assert postgres.tsquery(terms, any_word=True) == "'pillow' | 'sof':*"
    assert postgres.tsquery(terms, exclude=("silk",)) == "('pillow' & 'sof':*) & !('silk')"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query", ["mug & !ceramic", "mug | (lamp", "mug:*", "'mug'", "mug\\", 'title : "mug"', "mug -"]
)
def test_operators_typed_by_a_shopper_are_plain_text(query):
    mug = ProductFactory(title="Enamel mug")
    hits = selectors.keyword_hits(query=query, filters=SearchFilters(), limit=5)
    assert [pid for pid, _ in hits] in ([mug.pk], [])  # never a syntax error
    assert [pid for pid, _ in selectors.keyword_hits(query="mug", filters=SearchFilters(), limit=5)] == [mug.pk]  # fmt: skip


@pytest.mark.django_db
def test_exact_title_match_ignores_case_and_goes_through_the_backend():
    lamp = ProductFactory(title="Walnut Desk Lamp")
    ProductFactory(title="Walnut desk lamp shade")
    assert selectors.exact_match_ids(query="walnut desk LAMP", filters=SearchFilters()) == [lamp.pk]
    assert keyword.backend().__name__.rsplit(".", 1)[1] in ("sqlite", "postgres")
