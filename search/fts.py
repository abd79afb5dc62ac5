"""The keyword side of a text search: the shopper's words as safe full-text terms, and the
keyword queries: through the served version's tantivy index (search.keyword_engine) when it has
one and MEEPO_SEARCH_KEYWORD_ENGINE is "auto", else through the database (FTS5/BM25 on SQLite,
tsvector on PostgreSQL; see search.keyword). The engine answers None when it cannot be exact
(too many products changed since its build...): the database answers then.

Shopper text never reaches the full-text query syntax: `fts_match_terms` keeps only word tokens
and quotes each one. Every query takes a `SearchFilters` and applies it *inside* the query, so a
selective filter narrows the matches before ranking. Re-exported by `search.selectors`.
"""

from __future__ import annotations

import functools
import re

from django.db import connection

from search import keyword, keyword_engine
from search.filters import SearchFilters
from search.keyword import sqlite as keyword_sqlite

# Column weights (title > brand > category, tags > description): see search.keyword.
BM25_WEIGHTS = keyword_sqlite.BM25_WEIGHTS
MAX_QUERY_TOKENS = 12
MAX_TOKEN_CHARS = 40
# BM25 scores every match of a query, so a broad word ("fork" in a million products) costs time in
# proportion to the catalogue. Past this many matches only the newest are scored: the keyword
# list then ranks the newest matches, while the visual list still covers the whole catalogue.
KEYWORD_SCORED_MAX = 5_000
# Prefix matching (search as you type) starts at this many characters: "fo*" expands to every word
# starting with "fo" in the catalogue and says almost nothing about what the shopper wants.
PREFIX_MIN_CHARS = 3
# Words that must not be required in a product: "pillow for the sofa" is about a pillow and a sofa.
# fmt: off
STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "of", "on",
    "or", "the", "this", "to", "with", "your",
})
# fmt: on
_WORD = re.compile(r"\w+", re.UNICODE)
# A word the shopper put a minus before ("mug -ceramic"); a hyphen inside a word ("t-shirt") is not.
_NEGATIVE = re.compile(r"(?:^|(?<=\s))-(\w+)", re.UNICODE)


def fts_match_terms(query: str, *, prefix_last: bool = True) -> list[str]:
    """The query's words as quoted FTS5 terms (the last one a prefix while the shopper types).

    Each word is double-quoted, so FTS5 operators (AND, NEAR, *, ^, column:) and quotes typed by a
    shopper are plain text. Stopwords are dropped unless that leaves nothing.
    """
    tokens = [t[:MAX_TOKEN_CHARS] for t in _WORD.findall(query)][:MAX_QUERY_TOKENS]
    if not tokens:
        return []
    prefix = prefix_last and not query[-1:].isspace() and len(tokens[-1]) >= PREFIX_MIN_CHARS
    terms = [f'"{t}"' for t in tokens]
    if prefix:
        terms[-1] += "*"
    kept = [
        term for token, term in zip(tokens, terms, strict=True) if token.lower() not in STOPWORDS
    ]
    return kept or terms  # "the the" still searches for "the"


def split_negatives(query: str) -> tuple[str, tuple[str, ...]]:
    """("mug", ("ceramic",)) for "mug -ceramic": the words to search for, and those to exclude.

    A query that is nothing but minus-words ("-ceramic") is searched as typed: there is nothing
    to exclude it from.
    """
    negatives = tuple(dict.fromkeys(w.lower() for w in _NEGATIVE.findall(query)))
    positive = " ".join(_NEGATIVE.sub(" ", query).split())
    if not negatives or not _WORD.search(positive):
        return query, ()
    return positive, negatives[:MAX_QUERY_TOKENS]


def keyword_hits(
    *,
    query: str,
    filters: SearchFilters,
    limit: int,
    any_word: bool = False,
    exclude: tuple[str, ...] = (),
    collect: int = 0,
) -> list[tuple[int, float]]:
    """(product id, bm25 score; lower is better) for products matching `query`, best first.
    `collect`: up to that many when the keyword index answers (its top `limit` are the same,
    ties in one order); the database lists `limit` at most (its ties have no fixed order).

    All words must match by default: that is the precise signal (names, brands, SKUs) and it stays
    cheap on a big catalogue, where "any word" scores a large share of all products with BM25.
    Products matching any of the `exclude` words are left out.
    """
    terms = fts_match_terms(query)
    if not terms:
        return []
    found = keyword_engine.hits(
        terms=terms,
        filters=filters,
        limit=max(limit, collect),
        any_word=any_word,
        exclude=exclude,
    )
    if found is not None:
        return found
    where, params = filters.sql("p")
    # One word can match a large share of the catalogue: then only its newest
    # KEYWORD_SCORED_MAX matches are scored. Several words are intersected, which narrows them
    # already, and under a filter every match that passes it is scored: a selective filter could
    # leave few of the newest.
    newest = KEYWORD_SCORED_MAX if len(terms) == 1 and filters.is_empty else None
    return keyword.backend().hits(
        terms=terms,
        any_word=any_word,
        exclude=exclude,
        where=where,
        params=params,
        limit=limit,
        newest_bound=newest,
    )


def keyword_count(*, query: str, filters: SearchFilters, exclude: tuple[str, ...] = ()) -> int:
    """How many products match every word of `query` under `filters` (the exact keyword count).

    Asked only when the ranked keyword list was cut at its depth; counting walks the matches
    without scoring them.
    """
    terms = fts_match_terms(query)
    if not terms:
        return 0
    counted = keyword_engine.count(terms=terms, filters=filters, exclude=exclude)
    if counted is not None:
        return counted
    where, params = filters.sql("p")
    return keyword.backend().count(terms=terms, exclude=exclude, where=where, params=params)


def products_matching_any(words: tuple[str, ...], product_ids: list[int]) -> set[int]:
    """Which of `product_ids` mention any of `words` (stemmed, accents folded, as FTS matches)."""
    if not words or not product_ids:
        return set()
    found = keyword_engine.matching_any(words, product_ids)
    if found is not None:
        return found
    return keyword.backend().matching_any(words, product_ids)


def exact_match_ids(*, query: str, filters: SearchFilters, limit: int = 5) -> list[int]:
    """Products whose platform id, SKU, GTIN, MPN (or a variant's SKU/GTIN) or whole title
    equals the query: these go first.

    Every lookup uses an index, never a scan of the catalogue: the platform id through the
    (store, external_id) unique index, one probe per store; identifiers through their own
    indexes (a GTIN typed as UPC-A, EAN-13 or GTIN-14 finds the same product); the title through
    the keyword index's whole-title field (or, without one, a full-text phrase query), then an
    exact, case-insensitive comparison in SQL.
    """
    text = query.strip()
    if not text or len(text) > 300:
        return []
    tokens = _WORD.findall(text)[:MAX_QUERY_TOKENS]
    found = (
        "SELECT p.id FROM catalog_product p "
        "WHERE p.store_id IN (SELECT id FROM catalog_store) AND p.external_id = %s"
    )
    args = [text]
    found, args = _identifier_lookups(text, found, args)
    if tokens:
        title_sql, title_args = _title_lookup(text, tokens)
        found += f" UNION {title_sql}"
        args += title_args
    # The few rows found are checked against the filters afterwards, so a filter's own index
    # (brand, price...) never replaces the lookups above with a scan.
    where, params = filters.sql("p")
    sql = f"SELECT p.id FROM catalog_product p WHERE p.id IN ({found}) AND {where} ORDER BY p.id LIMIT %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*args, *params, limit])
        return [int(row[0]) for row in cursor.fetchall()]


def _title_lookup(text: str, tokens: list[str]) -> tuple[str, list]:
    """(SQL selecting products whose whole title is `text`, case aside; its params): the keyword
    index's whole-title matches and the products changed since it was written, by their
    indexes, when there is one; else the full-text phrase query."""
    backend = keyword.backend()
    found = keyword_engine.exact_title_lookup(text)
    if found is None:
        return backend.title_equals(text, tokens)
    candidates, since = found
    inside = f"p.id IN ({', '.join(['%s'] * len(candidates))}) OR " if candidates else ""
    sql = (
        "SELECT p.id FROM catalog_product p "
        f"WHERE ({inside}p.updated_at > %s) AND {backend.title_is_sql}"
    )
    return sql, [*candidates, since, text]


def gtin_forms(text: str) -> list[str]:
    """The stored forms a typed GTIN may have: "0 12345 67890 5" (UPC-A) -> its 13-digit form.

    Stored GTINs are digits only: GTIN-8 as is, UPC-A/EAN-13 as 13 digits, GTIN-14 as 14
    (see catalog.services.ProductData).
    """
    digits = re.sub(r"[\s-]", "", text)
    if not digits.isdigit() or not 8 <= len(digits) <= 14:
        return []
    forms = {digits, digits.zfill(13) if len(digits) <= 13 else digits, digits.zfill(14)}
    if len(digits) == 14 and digits.startswith("0"):
        forms.add(digits[1:])
    return sorted(forms)


def _identifier_lookups(text: str, found: str, args: list) -> tuple[str, list]:
    """`found` and `args` extended with the SKU, MPN and GTIN lookups for `text`."""
    if len(text) > 100:
        return found, args
    codes = list(dict.fromkeys([text, text.upper()]))
    marks = ", ".join(["%s"] * len(codes))
    for table, column in (("catalog_product", "sku"), ("catalog_product", "mpn")):
        found += f" UNION SELECT id FROM {table} WHERE {column} IN ({marks})"
        args = [*args, *codes]
    found += f" UNION SELECT product_id FROM catalog_productvariant WHERE sku IN ({marks})"
    args = [*args, *codes]
    if gtins := gtin_forms(text):
        marks = ", ".join(["%s"] * len(gtins))
        found += (
            f" UNION SELECT id FROM catalog_product WHERE gtin IN ({marks})"
            f" UNION SELECT product_id FROM catalog_productvariant WHERE gtin IN ({marks})"
        )
        args = [*args, *gtins, *gtins]
    return found, args


def may_name_attributes(query: str) -> bool:
    """False when a word of `query` is in no label of the attribute taxonomy: then
    `attributes.query_attributes` (which needs its labels to cover every word) finds nothing
    for sure, and its few hundred regular-expression searches (~0.3 ms) are spared. Always
    True with the lean data path off."""
    from search import attributes, live_rows

    if not live_rows.fast():
        return True
    words = [w for w in _WORD.findall(query.lower()) if w not in STOPWORDS]
    try:
        path = attributes.taxonomy_path()
        vocabulary = _attribute_words(str(path), path.stat().st_mtime)
    except (OSError, attributes.TaxonomyError):
        return True  # let query_attributes decide
    return bool(words) and len(words) <= 4 and set(words) <= vocabulary


@functools.lru_cache(maxsize=4)
def _attribute_words(path: str, mtime: float) -> frozenset[str]:
    """Every word of every label phrase of a taxonomy, as query_attributes matches them."""
    from search import attributes

    taxonomy = attributes.cached_taxonomy(path, mtime)
    return frozenset(
        word
        for spec in taxonomy.attributes.values()
        for label, names in spec.labels.items()
        for phrase in {*names, label.replace("-", " ")}
        for word in phrase.lower().split()
    )
