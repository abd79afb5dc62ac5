"""Products changed since a version's keyword index was written: its *delta*, matched and scored
in this process so keyword search stays exact against the live catalogue.

A product whose `updated_at` is after the index's `written_at` (new, retitled, re-branded...)
is left out of the index's matches (its indexed text may be stale) and matched here instead,
from its current text, analysed by the index's own analyzer and scored by tantivy's BM25 with
the index's statistics (document count, each term's document frequency, average field lengths
recorded at build): the delta's scores and the index's are on one scale, so the merged list is
the top by BM25 of both. The delta's rows are read once per (product, updated_at) and kept.
A product deleted since (its tombstone, catalog.ProductDeletion) is in the delta with no words:
left out of the index's matches and counts, matched by nothing.
Past MAX_DELTA changed products the whole query goes to the database (search.fts).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection

from search.keyword_index import BOOSTS, TEXT_FIELDS, KeywordIndex, analyzer, iter_products
from search.live_rows import changed_since_sql

# Past this many products changed since the build, the database answers (a rebuild is due:
# build_index republishes past keyword_index.REBUILD_AFTER_CHANGES). Each query reads the
# delta's ids and matches its words: ~2.5 ms a query at 1,000 (docs/benchmarks.md).
MAX_DELTA = 1_000
# tantivy's BM25 constants.
K1, B = 1.2, 0.75
# The word being typed ("lam"): in a field where at most PREFIX_SCORED_MAX indexed words start
# with it, each of those words is scored by BM25 (Lucene's scoring rewrite); past that, a match
# adds a constant, PREFIX_SCORE times the field's boost (a set query, cheap however broad).
PREFIX_SCORED_MAX = 16
PREFIX_SCORE = 2.0


@dataclass(frozen=True)
class Words:
    """A keyword query's analysed tokens: every one of `clauses` (or any, for "any word"), the
    `prefix` (the word being typed) too, none of `exclude`."""

    clauses: tuple[str, ...]
    prefix: str | None
    exclude: tuple[str, ...]
    # {field: the index's words starting with `prefix`} (search.keyword_engine.with_completions).
    completions: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class DeltaDoc:
    id: int
    tokens: dict[str, Counter]  # field -> token counts
    words: frozenset[str] = frozenset()  # every field's tokens


class Delta(dict):
    """{product id: DeltaDoc}: one look at the products changed since the index was written."""

    def matching(self, words: Words, *, any_word: bool = False) -> set[int]:
        """Ids of the docs matching `words` as the index's query would (set operations on
        each doc's word set: ~0.3 µs a doc)."""
        return {pid for pid, doc in self.items() if matches(doc, words, any_word=any_word)}


_cache: dict[int, tuple[object, DeltaDoc]] = {}  # id -> (updated_at as read, its text)
_too_many: dict[Path, bool] = {}
_cache_lock = threading.Lock()
_analyzer = None


def analyze(text: str) -> list[str]:
    """`text` as the index's analyzer tokenises it (one analyzer per process)."""
    global _analyzer
    if _analyzer is None:
        _analyzer = analyzer()
    return _analyzer.analyze(text) if text else []


def changed_sql(index: KeywordIndex, where: str = "1 = 1", params: list | None = None):
    """(SQL selecting (id, updated_at as text, 2 if the row passes `where` else 1) of the products
    changed since `index` was written, at most MAX_DELTA + 1, on the updated_at index; its
    params). `where` is a filter over `catalog_product p` (SearchFilters.sql): callers UNION
    it into the live check they run anyway. Products deleted since (their tombstones,
    catalog.ProductDeletion, on the deleted_at index) come as (id, deleted_at as text, 1):
    never passing, and `documents` makes them empty docs, so they are left out of the index's
    matches and match nothing here."""
    since = connection.ops.adapt_datetimefield_value(index.written_at)
    changed = changed_since_sql(
        f", CAST(p.updated_at AS TEXT), CASE WHEN {where} THEN 2 ELSE 1 END",
        ", CAST(deleted_at AS TEXT), 1",
    )
    sql = f"SELECT d.* FROM ({changed}) d"
    return sql, [*(params or []), since, since, MAX_DELTA + 1]


def changed(index: KeywordIndex) -> Delta | None:
    """{product id: its current text} of products changed since `index` was written, None past
    MAX_DELTA: one query (`changed_sql`), then `documents`; none when `known_empty`."""
    if known_empty(index):
        return documents(index, [])
    sql, params = changed_sql(index)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return documents(index, [(pid, at) for pid, at, _ in cursor.fetchall()])


def known_empty(index: KeywordIndex) -> bool:
    """Whether nothing changed since `index` was written, known without a query of its own
    (lean data path): its version's snapshot read the catalogue no later than the index was
    written, and this request's look at the changes since that read (live_rows.changed_ids,
    read once per request, by the visual side already) found none. Changes since the earlier
    moment include every change since the later one."""
    from search import live_rows, snapshot
    from search.exceptions import IndexNotReady, ModelNotAvailable
    from search.index import get_index

    if not live_rows.fast():
        return False
    try:
        served = get_index()
    except (IndexNotReady, ModelNotAvailable):
        return False
    snap = snapshot.for_index(served) if served.path == index.path.parent else None
    if snap is None:
        return False
    if live_rows.since(snap) > index.written_at:
        return False
    changed_ids = live_rows.changed_ids(snap)
    return changed_ids is not None and not len(changed_ids)


def documents(index: KeywordIndex, rows: list[tuple]) -> Delta | None:
    """The Delta of `changed_sql`'s (id, updated_at) rows (None past MAX_DELTA); product rows
    are read only for products not yet cached at that updated_at."""
    _too_many[index.path] = len(rows) > MAX_DELTA
    if _too_many[index.path]:
        return None
    return Delta(_read(rows))


def _read(rows: list[tuple]) -> dict[int, DeltaDoc]:
    """{id: its doc} of `rows`; a product not found (deleted since) gets an empty doc."""
    with _cache_lock:
        missing = [pid for pid, at in rows if _cache.get(pid, (None,))[0] != at]
    if missing:
        fresh = {row[0]: _document(row) for row in iter_products(ids=missing)}
        fresh.update({pid: _gone(pid) for pid in missing if pid not in fresh})
        stamps = dict(rows)
        with _cache_lock:
            if len(_cache) > 4 * MAX_DELTA:
                _cache.clear()
            for pid, doc in fresh.items():
                _cache[pid] = (stamps[pid], doc)
    with _cache_lock:
        return {pid: _cache[pid][1] for pid, _ in rows if pid in _cache}


def too_many(index: KeywordIndex) -> bool:
    """Whether the last look at `index`'s delta found more than MAX_DELTA products (looks now
    when it never did)."""
    if index.path not in _too_many:
        changed(index)
    return _too_many[index.path]


def _gone(pid: int) -> DeltaDoc:
    """The doc of a product deleted since: no words (left out of the index, matches nothing)."""
    return DeltaDoc(pid, {name: Counter() for name in TEXT_FIELDS})


def _document(row: tuple) -> DeltaDoc:
    texts = dict(zip(TEXT_FIELDS, row[1:6], strict=True))
    tokens = {name: Counter(analyze(texts[name])) for name in TEXT_FIELDS}
    return DeltaDoc(row[0], tokens, frozenset().union(*tokens.values()))


def matches(doc: DeltaDoc, words: Words, *, any_word: bool = False) -> bool:
    """Whether `doc` matches `words` as the index's query would."""
    have = doc.words
    if any_word:
        hit = not have.isdisjoint(words.clauses)
    else:
        hit = bool(words.clauses or words.prefix is not None) and have.issuperset(words.clauses)
    if words.prefix is not None and (hit != any_word):
        # all words: the prefix is required too; any word: it may be the only match
        hit = any(k.startswith(words.prefix) for k in have)
    return hit and have.isdisjoint(words.exclude)


def score(index: KeywordIndex, doc: DeltaDoc, words: Words) -> float:
    """tantivy's BM25 of `doc` for `words` with the index's statistics (higher = better)."""
    total = 0.0
    averages = index.meta.get("average_tokens", {})
    for name in TEXT_FIELDS:
        counts = doc.tokens[name]
        if not counts:
            continue
        length = sum(counts.values())
        average = averages.get(name) or length  # nothing sampled: as long as the average
        norm = K1 * (1 - B + B * length / max(average, 1))
        typed = [k for k in counts if k.startswith(words.prefix)] if words.prefix else []
        if typed and len(words.completions.get(name, ())) > PREFIX_SCORED_MAX:
            total += BOOSTS[name] * PREFIX_SCORE
            typed = []
        for token in (*words.clauses, *typed):
            tf = counts.get(token, 0)
            if tf:
                total += BOOSTS[name] * _idf(index, name, token) * tf * (K1 + 1) / (tf + norm)
    return total


def _idf(index: KeywordIndex, name: str, token: str) -> float:
    n = index.searcher.num_docs
    df = index.searcher.doc_freq(name, token)
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def ranked(
    index: KeywordIndex, delta: Delta, words: Words, *, any_word: bool
) -> list[tuple[int, float]]:
    """(product id, -BM25) of the delta's matches, best first (lower = better, as FTS5's)."""
    found = [
        (pid, -score(index, delta[pid], words)) for pid in delta.matching(words, any_word=any_word)
    ]
    return sorted(found, key=lambda hit: (hit[1], hit[0]))


def forget_cache() -> None:
    """Forget cached delta rows (tests)."""
    with _cache_lock:
        _cache.clear()
    _too_many.clear()
