"""Index queries over given products (search.keyword_engine): the unscored restrictions of a
keyword query to, or away from, a few product ids (a count's stale copies, a membership test,
the products changed since the build).

tantivy's term-set query on the `id` field (indexed and fast) reads the fast-field column of
every document: inside a keyword query at 1 M products ~1.6 ms for 10 ids, ~15 ms for 1,000.
A union of one term query per id costs a term-dictionary look-up each instead (~1 ms for 10,
~7 ms for 1,000 in the same query; much less where the ids drive the query): the same
documents. Its BM25 scores are never used: callers count, test membership, leave out or wrap
it in a constant score.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def ids_query(schema: Any, product_ids: Iterable[int]) -> Any:
    """A query matching the documents of `product_ids` (none for none)."""
    import tantivy

    Query = tantivy.Query
    terms = [(tantivy.Occur.Should, Query.term_query(schema, "id", int(pid))) for pid in product_ids]  # fmt: skip
    return Query.boolean_query(terms) if terms else Query.empty_query()
