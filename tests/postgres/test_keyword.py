"""Keyword search keeps one contract on every backend (this file runs in both suites): field
weights, prefixes while typing, minus words, exact title and SKU first, shopper text never
parsed as query syntax."""

import pytest

from search import keyword, selectors
from search.keyword import postgres, sqlite
from search.keyword.base import KeywordBackend
from search.selectors import SearchFilters
from tests.conftest import database_vendor
from tests.factories import ProductFactory

NO_FILTER = SearchFilters()


def _ids(query: str, **kwargs) -> list[int]:
    return [pid for pid, _ in selectors.keyword_hits(query=query, filters=NO_FILTER, limit=10, **kwargs)]  # fmt: skip


def test_postgres_query_text_quotes_every_word_and_keeps_prefix_and_minus_words():
    terms = selectors.fts_match_terms("pillow sof")
    assert postgres.tsquery(terms) == "'pillow' & 'sof':*"
    assert postgres.tsquery(terms, any_word=True) == "'pillow' | 'sof':*"
    assert postgres.tsquery(terms, exclude=("silk",)) == "('pillow' & 'sof':*) & !('silk')"
    assert postgres.BACKEND.text(terms, exclude=("silk",)) == postgres.tsquery(terms, exclude=("silk",))  # fmt: skip
    assert sqlite.BACKEND.text(terms, exclude=("silk",)) == '("pillow" AND "sof"*) NOT ("silk")'


@pytest.mark.django_db
def test_the_backend_is_the_databases_own():
    backend = keyword.backend()
    assert isinstance(backend, KeywordBackend)
    assert type(backend).__module__ == keyword.BACKENDS[database_vendor()]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query", ["mug & !ceramic", "mug | (lamp", "mug:*", "'mug'", "mug\\", 'title : "mug"', "mug -"]
)
def test_operators_typed_by_a_shopper_are_plain_text(query):
    mug = ProductFactory(title="Enamel mug")
    hits = selectors.keyword_hits(query=query, filters=NO_FILTER, limit=5)
    assert [pid for pid, _ in hits] in ([mug.pk], [])  # never a syntax error
    assert _ids("mug") == [mug.pk]


@pytest.mark.django_db
def test_exact_title_match_ignores_case_and_goes_through_the_backend():
    lamp = ProductFactory(title="Walnut Desk Lamp")
    ProductFactory(title="Walnut desk lamp shade")
    assert selectors.exact_match_ids(query="walnut desk LAMP", filters=NO_FILTER) == [lamp.pk]


@pytest.mark.django_db
def test_exact_sku_match_comes_first_even_without_a_keyword_hit():
    sku = ProductFactory(title="Stoneware jug", sku="JUG-0042")
    ProductFactory(title="Jug 0042 lookalike")
    assert selectors.exact_match_ids(query="JUG-0042", filters=NO_FILTER) == [sku.pk]
    assert selectors.exact_match_ids(query="jug-0042", filters=NO_FILTER) == [sku.pk]


@pytest.mark.django_db
def test_field_weights_rank_title_then_brand_then_category_and_tags_then_description():
    # Every product says "walnut" once, in one field, with the other fields alike in length.
    desc = ProductFactory(title="Oak serving tray", brand="Acme", category="Kitchen", description="Made of walnut")  # fmt: skip
    cat = ProductFactory(title="Oak serving tray", brand="Acme", category="Walnut", description="Made of oak")  # fmt: skip
    tag = ProductFactory(title="Oak serving tray", brand="Acme", category="Kitchen", tags=["walnut"], description="Made of oak")  # fmt: skip
    brand = ProductFactory(title="Oak serving tray", brand="Walnut", category="Kitchen", description="Made of oak")  # fmt: skip
    title = ProductFactory(title="Walnut serving tray", brand="Acme", category="Kitchen", description="Made of oak")  # fmt: skip
    ranked = _ids("walnut ")
    assert ranked[:2] == [title.pk, brand.pk]
    assert set(ranked[2:4]) == {cat.pk, tag.pk}
    assert ranked[4:] == [desc.pk]


@pytest.mark.django_db
def test_the_last_word_is_a_prefix_while_typing_and_a_word_after_a_space():
    pillow = ProductFactory(title="Linen pillow")
    pill = ProductFactory(title="Pill box")
    assert _ids("linen pillo") == [pillow.pk]
    assert set(_ids("pill")) == {pillow.pk, pill.pk}
    assert _ids("pill ") == [pill.pk]
    assert _ids("pi") == []  # two letters are no prefix yet


@pytest.mark.django_db
def test_minus_words_leave_products_out_with_stemming_and_any_field():
    keep = ProductFactory(title="Enamel mug", description="Steel and enamel")
    ProductFactory(title="Mug", tags=["ceramics"])
    ProductFactory(title="Stoneware mug", brand="Ceramic Co")
    assert _ids("mug", exclude=("ceramic",)) == [keep.pk]
    count = selectors.keyword_count(query="mug", filters=NO_FILTER, exclude=("ceramic",))
    assert count == 1
    assert selectors.keyword_count(query="mug", filters=NO_FILTER) == 3


@pytest.mark.django_db
def test_matching_any_finds_stemmed_words_among_the_given_products_only():
    a = ProductFactory(title="Cotton cushions")
    b = ProductFactory(title="Wool throw", description="Crème colour")
    c = ProductFactory(title="Cotton sheet")
    found = selectors.products_matching_any(("cushion", "creme"), [a.pk, b.pk, c.pk])
    assert found == {a.pk, b.pk}
    assert selectors.products_matching_any(("cotton",), [a.pk]) == {a.pk}
