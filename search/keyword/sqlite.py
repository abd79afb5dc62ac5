"""Keyword search on SQLite: FTS5 with BM25 over `catalog_product_fts`, an external-content table
kept by triggers (catalog migration 0002). See search.keyword for the contract."""

from __future__ import annotations

from search.keyword.base import MAX_TOKEN_CHARS, KeywordBackend

# BM25 column weights, in FTS column order: title, brand, category, tags, description. A word in
# the title says far more about a product than the same word somewhere in a long description.
BM25_WEIGHTS = (10.0, 6.0, 3.0, 3.0, 1.0)
_MATCHES = (
    "FROM catalog_product_fts JOIN catalog_product p ON p.id = catalog_product_fts.rowid "
    "WHERE catalog_product_fts MATCH %s AND {where}"
)


def any_of(words: tuple[str, ...]) -> str:
    return " OR ".join(f'"{w[:MAX_TOKEN_CHARS]}"' for w in words)


def match(terms: list[str], *, any_word: bool = False, exclude: tuple[str, ...] = ()) -> str:
    """An FTS5 MATCH expression: all (or any) of `terms`, none of `exclude`."""
    expr = (" OR " if any_word else " AND ").join(terms)
    return f"({expr}) NOT ({any_of(exclude)})" if expr and exclude else expr


class SQLiteKeyword(KeywordBackend):
    newest_sql = (
        "SELECT rowid FROM catalog_product_fts WHERE catalog_product_fts MATCH %s "
        "ORDER BY rowid DESC LIMIT 1 OFFSET %s"
    )
    ranked_sql = (
        f"SELECT p.id, bm25(catalog_product_fts, {', '.join(map(str, BM25_WEIGHTS))}) AS score "
        f"{_MATCHES}{{bound}} ORDER BY score LIMIT %s"
    )
    bound_sql = " AND catalog_product_fts.rowid >= %s"
    count_sql = f"SELECT COUNT(*) {_MATCHES}"
    any_sql = (
        "SELECT rowid FROM catalog_product_fts "
        "WHERE catalog_product_fts MATCH %s AND rowid IN ({ids})"
    )

    title_is_sql = "p.title = %s COLLATE NOCASE"

    def text(self, terms, *, any_word=False, exclude=()):
        return match(terms, any_word=any_word, exclude=exclude)

    def title_equals(self, text, tokens):
        """An FTS5 phrase query on the title column, then an exact, case-insensitive comparison."""
        phrase = 'title : "' + " ".join(tokens) + '"'
        sql = (
            "SELECT p.id FROM catalog_product_fts "
            "JOIN catalog_product p ON p.id = catalog_product_fts.rowid "
            "WHERE catalog_product_fts MATCH %s AND p.title = %s COLLATE NOCASE"
        )
        return sql, [phrase, text]


BACKEND = SQLiteKeyword()
