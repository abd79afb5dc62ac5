"""Keyword search through a version's tantivy index (search.keyword_index), exact against the
live catalogue. Each call returns None when the engine cannot answer it exactly (no keyword index
for the served version, MEEPO_SEARCH_KEYWORD_ENGINE=database, too many products changed since the
build, a filter too selective for the index); `search.fts` then asks the database.

Queries: every word (MUST) or any word (SHOULD), each word a SHOULD over the five text fields
boosted title 10 > brand 6 > category 3 = tags 3 > description 1 (BM25 per field, summed); the
word being typed a prefix (its completions in the stemmed term dictionary: each scored as a word
when few, one constant-scored set when many); minus-words MUST_NOT; store, brand and category
filters pushed into the query (unscored).

Exactness: (a) index hits are those active at the build (a product whose flag changed since
moved its `updated_at`, so (b) has it), then, under a price, stock or attribute filter, checked
live in one primary-key query (`filters.sql`); while fewer than `limit` survive and the
index has more matches, the next window is read, up to MAX_SCANNED, then the database answers;
(b) products changed since the index was written are left out of its matches and matched by
search.keyword_delta instead, on the same BM25 scale, and merged by score (products deleted
since are left out and match nothing). Every match is scored. A count right after the hits of
the same query is that search's match count, corrected for the delta; price or stock filters
are counted by search.keyword.checked_count (lean data path) or the database.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

from django.db import connection

from search import keyword_delta, live_rows
from search.filters import SearchFilters
from search.keyword.id_sets import ids_query
from search.keyword.windows import HitWindows, count_matches
from search.keyword.windows import product_ids as _ids
from search.keyword_delta import PREFIX_SCORE, PREFIX_SCORED_MAX, Words, analyze
from search.keyword_index import BOOSTS, TEXT_FIELDS, KeywordIndex, for_index

# The first window of index hits checked live: a little more than asked, as some may be gone.
MIN_WINDOW = 64
# Past this many index hits checked live without filling the page, the database answers.
MAX_SCANNED = 20_000
# Products with this exact title are read from the index (then checked in SQL), by id.
EXACT_TITLE_MAX = 1_000
# Ids per live-check query (SQLite's bound-parameter limit).
IDS_PER_QUERY = 5_000
# Under a live-checked filter the first search reads the next window too (search.keyword.windows).
AHEAD = 5


def current() -> KeywordIndex | None:
    """The served version's keyword index, or None (no index, none beside it, or "database")."""
    from django.conf import settings

    from search.exceptions import IndexNotReady
    from search.index import get_index

    if settings.MEEPO_SEARCH_KEYWORD_ENGINE != "auto":
        return None
    try:
        return for_index(get_index())
    except IndexNotReady:
        return None


def parse(terms: list[str], exclude: tuple[str, ...] = ()) -> Words:
    """`terms` (quoted words from search.fts.fts_match_terms, the last maybe `"word"*`) and the
    minus-words, analysed as the index was."""
    clauses: list[str] = []
    prefix = None
    for i, term in enumerate(terms):
        tokens = analyze(term.rstrip("*").strip('"'))
        if term.endswith("*") and i == len(terms) - 1 and tokens:
            *tokens, prefix = tokens
        clauses += tokens
    excluded = tuple(t for word in exclude for t in analyze(word))
    return Words(tuple(dict.fromkeys(clauses)), prefix, excluded)


def hits(
    *,
    terms: list[str],
    filters: SearchFilters,
    limit: int,
    any_word: bool,
    exclude: tuple[str, ...],
) -> list[tuple[int, float]] | None:
    """search.fts.keyword_hits through the engine: (product id, -BM25), best first. For a
    query `count` can answer, the same index search also counts its matches (as cheap as the
    top-k alone: ~1.9 ms either way at 1 M), kept for this thread's next `count` of it."""
    index = current()
    if index is None:
        return None
    words = with_completions(index, parse(terms, exclude))
    if not words.clauses and words.prefix is None:
        return []
    countable = not any_word and _countable(filters)
    structural = _filters(index, filters)
    query = _query(index, words, any_word=any_word, filters=filters, active=True, structural=structural)  # fmt: skip
    top = _live_top(index, query, filters, limit, count=countable)
    if top is None:
        return None
    found, delta, live, total = top
    if countable:
        _last.counted = _Counted(_count_key(index, terms, filters, exclude), time.monotonic(), total, structural, words, delta, live)  # fmt: skip
    extra = [hit for hit in keyword_delta.ranked(index, delta, words, any_word=any_word) if hit[0] in live]  # fmt: skip
    if extra:
        found = sorted(found + extra, key=lambda hit: hit[1])[:limit]
    return found


def count(*, terms: list[str], filters: SearchFilters, exclude: tuple[str, ...]) -> int | None:
    """search.fts.keyword_count through the engine (price, stock, attribute filters: see
    search.keyword.checked_count); right after `hits` of the query, from that search's count."""
    if not _countable(filters):
        from search.keyword.checked_count import count_checked

        return count_checked(terms, filters, exclude)
    index = current()
    if index is None:
        return None
    counted = _reuse(_count_key(index, terms, filters, exclude))
    if counted is not None:
        return counted.total_now(index)
    delta = keyword_delta.changed(index)
    if delta is None:
        return None
    words = with_completions(index, parse(terms, exclude))
    if not words.clauses and words.prefix is None:
        return 0
    query = _query(index, words, filters=filters, left_out=list(delta), active=True)
    counted = count_matches(index.searcher, query)
    changed = sorted(delta.matching(words))
    return counted + len(live_rows.passing_product_ids(changed, filters))


@dataclass
class _Counted:
    """What `hits` learnt for `count`: its index search's match count (products active at the
    build, passing the structural filters, the delta's stale copies included), and what it
    read of the delta."""

    key: tuple
    at: float
    total: int
    structural: list  # the filters' index queries (keyword_engine._filters)
    words: Words
    delta: keyword_delta.Delta
    live: set[int]  # the delta's products live and passing the filters now

    def total_now(self, index: KeywordIndex) -> int:
        """`count`'s answer: the index's matches less the delta's indexed copies (the same
        query, driven by the delta's ids), plus the delta's products matching now."""
        if not self.delta:
            return self.total
        stale_query = _query(index, self.words, filters=None, structural=self.structural, within=self.delta, active=True)  # fmt: skip
        stale = count_matches(index.searcher, stale_query)
        return self.total - stale + len(self.delta.matching(self.words) & self.live)


_last = threading.local()
# A count reuses its hits' search only this soon after it, in the same thread (one request).
COUNT_REUSE_SECONDS = 1.0


def _countable(filters: SearchFilters) -> bool:
    """Whether the index holds every column `filters` reads (as of the build, and each change
    since moves `updated_at`): no price, stock or attribute filter."""
    return filters.is_structural and not any(values for _, values in filters.attributes)


def _count_key(index: KeywordIndex, terms: list[str], filters, exclude) -> tuple:
    return (index.path, tuple(terms), filters, tuple(exclude))


def _reuse(key: tuple) -> _Counted | None:
    """This thread's last `hits` count for `key` if recent (used once)."""
    counted = getattr(_last, "counted", None)
    _last.counted = None
    if counted is None or counted.key != key:
        return None
    if time.monotonic() - counted.at > COUNT_REUSE_SECONDS:
        return None
    return counted


def exact_title_lookup(text: str) -> tuple[list[int], object] | None:
    """(products the index holds with exactly this title, case aside; the index's written_at
    as a query parameter): the caller compares in SQL the titles of those and of every product
    changed since (`p.updated_at > %s`, on its index)."""
    import tantivy

    index = current()
    if index is None or keyword_delta.too_many(index):
        return None
    title, found = text.lower(), []
    if index.searcher.doc_freq("exact_title", title):  # most queries name no title: ~2 µs, not ~50
        query = tantivy.Query.term_query(index.schema, "exact_title", title)
        result = index.searcher.search(query, EXACT_TITLE_MAX, count=False, order_by_field="id", order=tantivy.Order.Asc)  # fmt: skip
        found = sorted({int(key) for key, _ in result.hits})
    since = connection.ops.adapt_datetimefield_value(index.written_at)
    return found, since


def matching_any(words: tuple[str, ...], product_ids: list[int]) -> set[int] | None:
    """search.fts.products_matching_any through the engine."""
    import tantivy

    index = current()
    delta = keyword_delta.changed(index) if index is not None else None
    if delta is None:
        return None
    parsed = Words(tuple(t for w in words for t in analyze(w)), None, ())
    if not parsed.clauses:
        return set()
    found = {pid for pid in product_ids if pid in delta and keyword_delta.matches(delta[pid], parsed, any_word=True)}  # fmt: skip
    indexed = [pid for pid in product_ids if pid not in delta]
    if not indexed:
        return found
    Occur, within = tantivy.Occur, _unscored(ids_query(index.schema, indexed))
    query = tantivy.Query.boolean_query([(Occur.Must, _any(index, parsed)), (Occur.Must, within)])
    result = index.searcher.search(query, len(indexed), count=False, order_by_field="id")
    return found | {int(pid) for pid, _ in result.hits}  # unscored: sorted by the id fast field


def _live_top(index: KeywordIndex, query, filters: SearchFilters, limit: int, *, count=False):
    """(the top `limit` (id, -score) of `query` that pass `filters` now and did not change
    since the build, the delta's documents, those of the delta passing `filters`, the index's
    match count when `count` else None), reading the index's hits window by window; None past
    MAX_SCANNED hits or MAX_DELTA changed products. Under a filter the index answers whole
    (`_countable`: active, stores, brands, categories, all moving `updated_at` when they
    change), a hit left after the delta needs no live check: only the delta is read."""
    trusted = _countable(filters)
    found: list[tuple[int, float]] = []
    offset, window = 0, max(limit, MIN_WINDOW)
    delta, changed_live, total = None, set(), None
    windows = HitWindows(index.searcher, query, count=count, ahead=window * (1 if trusted else AHEAD))  # fmt: skip
    while True:
        got = windows.read(offset, window)
        ids = _ids(index.searcher, got)
        if delta is None:  # the first window's live check also reads the delta
            total = windows.total
            live, rows = _live_and_changed(index, [] if trusted else ids, filters)
            delta = keyword_delta.documents(index, rows)
            if delta is None:
                return None
            changed_live = live & set(delta)
        else:
            live = set() if trusted else live_rows.passing_now(_snapshot(), ids, filters)
        if trusted:  # an unchanged hit active at the build passes the filter now
            live |= set(ids)
        found += [
            (pid, -score)
            for (score, _), pid in zip(got, ids, strict=True)
            if pid in live and pid not in delta
        ]
        if len(found) >= limit or len(got) < window:
            return found[:limit], delta, changed_live, total
        offset += window
        if offset >= MAX_SCANNED:
            return None
        window *= 4


def _live_and_changed(index: KeywordIndex, ids: list[int], filters: SearchFilters):
    """(those of `ids` and of the delta live and passing `filters`, the delta's (id,
    updated_at) rows) in one query: the first window's live check UNION ALL the delta's."""
    if keyword_delta.known_empty(index):  # the steady state: no delta, hits checked at once
        return live_rows.passing_now(_snapshot(), ids, filters) if ids else set(), []
    first, rest = ids[:IDS_PER_QUERY], ids[IDS_PER_QUERY:]
    where, where_params = filters.sql("p")
    sql, params = keyword_delta.changed_sql(index, where, where_params)
    if first:
        marks = ", ".join(["%s"] * len(first))
        sql = (
            f"SELECT p.id, NULL, 0 FROM catalog_product p WHERE p.id IN ({marks}) AND {where} "
            f"UNION ALL {sql}"
        )
        params = [*first, *where_params, *params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    live = {int(pid) for pid, _, kind in rows if kind != 1} | live_rows.passing_product_ids(
        rest, filters
    )
    return live, [(int(pid), at) for pid, at, kind in rows if kind]


def _snapshot():
    from search import snapshot
    from search.index import get_index

    return snapshot.for_index(get_index())


def _query(index, words: Words, *, filters, left_out=(), within=(), any_word=False, active=False, structural=None):  # fmt: skip
    """The index query for `words` under `filters` (`structural`: `_filters`' queries for them,
    when built already)."""
    import tantivy

    Occur, Query = tantivy.Occur, tantivy.Query
    words_query = _any(index, words) if any_word else None
    clauses = [(Occur.Must, words_query)] if words_query is not None else []
    if not any_word:
        clauses += [(Occur.Must, _word(index, t)) for t in words.clauses]
        if words.prefix is not None:
            clauses.append((Occur.Must, _prefix(index, words)))
    clauses += [(Occur.MustNot, _word(index, t)) for t in words.exclude]
    if left_out:
        clauses.append((Occur.MustNot, ids_query(index.schema, left_out)))
    if within:  # for counts only: another clause, another order of summing the scores
        clauses.append((Occur.Must, _unscored(ids_query(index.schema, within))))
    if active:  # every document has 0 or 1: leaving out the few 0s beats intersecting the 1s
        clauses.append((Occur.MustNot, Query.term_query(index.schema, "active", 0)))
    structural = _filters(index, filters) if structural is None else structural
    clauses += [(Occur.Must, _unscored(q)) for q in structural]
    return Query.boolean_query(clauses)


def _any(index, words: Words):
    import tantivy

    parts = [_word(index, t) for t in words.clauses]
    if words.prefix is not None:
        parts.append(_prefix(index, words))
    return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in parts])


def _word(index, token: str):
    """One analysed word in any text field, BM25 per field times its boost."""
    import tantivy

    Query = tantivy.Query
    return Query.boolean_query(
        [
            (
                tantivy.Occur.Should,
                Query.boost_query(Query.term_query(index.schema, name, token), BOOSTS[name]),
            )
            for name in TEXT_FIELDS
        ]
    )


def with_completions(index: KeywordIndex, words: Words) -> Words:
    """`words` with, per text field, the indexed words starting with its prefix (the term
    dictionary read in order, no automaton: microseconds, against ~0.2 ms to build a regex)."""
    if words.prefix is None:
        return words
    found = {
        name: tuple(term for term, _ in index.searcher.terms_with_prefix(name, words.prefix))
        for name in TEXT_FIELDS
    }
    return replace(words, completions=found)


def _prefix(index, words: Words):
    """The word being typed in any text field: its completions each scored as a word when
    there are few (PREFIX_SCORED_MAX), else one constant-scored set of them."""
    import tantivy

    Query, parts = tantivy.Query, []
    for name in TEXT_FIELDS:
        completions = list(words.completions.get(name, ()))
        if len(completions) > PREFIX_SCORED_MAX:
            query = Query.term_set_query(index.schema, name, completions)
            parts.append(Query.boost_query(query, BOOSTS[name] * PREFIX_SCORE))
        else:
            parts += [Query.boost_query(Query.term_query(index.schema, name, term), BOOSTS[name]) for term in completions]  # fmt: skip
    if not parts:
        return Query.empty_query()
    return Query.boolean_query([(tantivy.Occur.Should, q) for q in parts])


def _unscored(query):
    import tantivy

    return tantivy.Query.const_score_query(query, 0.0)


def _filters(index, filters: SearchFilters) -> list:
    """The structural filters as index queries: stores (by id), brands, categories."""
    import tantivy

    Query, schema = tantivy.Query, index.schema
    out = []
    if filters.stores:
        marks = ", ".join(["%s"] * len(filters.stores))
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM catalog_store WHERE slug IN ({marks})", list(filters.stores))  # fmt: skip
            stores = [int(row[0]) for row in cursor.fetchall()]
        out.append(Query.term_set_query(schema, "store", stores) if stores else Query.empty_query())
    if filters.brands:
        out.append(Query.term_set_query(schema, "brand_exact", list(filters.brands)))
    if filters.categories:
        out.append(Query.term_set_query(schema, "category_exact", list(filters.categories)))
    return out
