"""search.keyword.id_sets: a union of id terms matches exactly the given products (the term-set
query it replaces for counts, membership and products left out)."""

import pytest

from search import keyword_engine
from search.keyword.id_sets import ids_query
from tests.factories import ProductFactory
from tests.search.test_keyword_engine import publish_with_keywords

pytestmark = pytest.mark.django_db


def matched(index, query) -> set[int]:
    found = index.searcher.search(query, 100, count=True)
    assert found.count == len(found.hits)
    return set(keyword_engine._ids(index.searcher, found.hits))


def test_ids_query_matches_exactly_the_products_given(settings):
    import tantivy

    made = [ProductFactory(title=f"Oak table {i}") for i in range(6)]
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    publish_with_keywords(settings)
    index = keyword_engine.current()
    some = [made[1].pk, made[4].pk, 999_999]  # one unknown
    assert matched(index, ids_query(index.schema, some)) == {made[1].pk, made[4].pk}
    assert matched(index, ids_query(index.schema, [])) == set()
    assert matched(index, ids_query(index.schema, iter(some))) == {made[1].pk, made[4].pk}
    rest = tantivy.Query.boolean_query(
        [
            (tantivy.Occur.Must, tantivy.Query.all_query()),
            (tantivy.Occur.MustNot, ids_query(index.schema, some)),
        ]
    )
    assert matched(index, rest) == {p.pk for p in made} - {made[1].pk, made[4].pk}
