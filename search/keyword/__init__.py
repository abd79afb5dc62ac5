"""Keyword search, one module per database backend with the same contract: search.keyword.base
holds the calls and their shared steps, each backend module only its query text and SQL.

`search.selectors` builds the query's terms (`fts_match_terms`: quoted words, the last one maybe a
prefix) and the filters' WHERE fragment over `catalog_product p`; the backend turns them into its
own full-text query:

- `hits(terms, any_word, exclude, where, params, limit, newest_bound)` -> [(product id, score)],
  best first, score lower = better (FTS5's bm25() sign), weighted title > brand > category, tags
  > description; products matching any `exclude` word left out; with `newest_bound`, only the
  newest `KEYWORD_SCORED_MAX` matches are scored.
- `count(terms, exclude, where, params)` -> how many products match every term.
- `matching_any(words, product_ids)` -> those of `product_ids` that mention any of `words`.
- `title_equals(text, tokens)` -> (SQL selecting product ids whose whole title equals `text`,
  case-insensitively, through the full-text index; its params) for `exact_match_ids`.
- `title_is_sql`: `p.title` equals a parameter as `title_equals` compares (the keyword engine's
  whole-title candidates are checked with it).

With a keyword index beside the served index version, search.fts asks search.keyword_engine
(tantivy) first; these backends answer when it cannot (docs/search.md, "Keyword index").

SQLite: an FTS5 table kept by triggers (catalog migration 0002). PostgreSQL: a generated
`tsvector` column with a GIN index (same migration, PostgreSQL branch).
"""

from __future__ import annotations

from importlib import import_module

from django.db import connection

from search.keyword.base import KeywordBackend

BACKENDS = {"sqlite": "search.keyword.sqlite", "postgresql": "search.keyword.postgres"}


def backend() -> KeywordBackend:
    """The keyword backend for the default database's engine."""
    try:
        return import_module(BACKENDS[connection.vendor]).BACKEND
    except KeyError:
        raise NotImplementedError(f"no keyword search for {connection.vendor}") from None
