"""`search.keyword_engine.count` under price or stock filters (which the keyword index does not
hold), lean data path: when nothing changed since the build (keyword_delta.known_empty), the
index's matches under the filters' structural part (active at the build, stores, brands,
categories), at most COUNT_CHECKED_MAX, each checked now against the snapshot's columns
(live_rows.passing_now: their price and stock are the build's), instead of the database's
full-text count (~7 ms at 1 M). None otherwise: the database counts.
"""

from __future__ import annotations

from search import keyword_delta, live_rows
from search.filters import SearchFilters

# Past this many matches under the structural part, the database counts.
COUNT_CHECKED_MAX = 20_000


def count_checked(terms: list[str], filters: SearchFilters, exclude) -> int | None:
    """The count, or None when the database must count (see the module docstring)."""
    from search.keyword_engine import _query, _snapshot, current, parse, with_completions

    if not live_rows.fast():
        return None
    index = current()
    if index is None or any(v for _, v in filters.attributes):
        return None
    if not keyword_delta.known_empty(index):
        return None
    words = with_completions(index, parse(terms, exclude))
    if not words.clauses and words.prefix is None:
        return 0
    query = _query(index, words, filters=filters.structural(), active=True)
    # Every match, unscored (ordered by the id fast field, whose values come with the hits).
    result = index.searcher.search(query, COUNT_CHECKED_MAX, count=True, order_by_field="id")
    if result.count > COUNT_CHECKED_MAX:
        return None
    return len(live_rows.passing_now(_snapshot(), [int(pid) for pid, _ in result.hits], filters))
