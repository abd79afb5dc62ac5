"""Keyword search on SQLite: FTS5 with BM25 (see search.keyword for the contract)."""

from __future__ import annotations

from django.db import connection

# BM25 column weights, in FTS column order: title, brand, category, tags, description. A word in
# the title says far more about a product than the same word somewhere in a long description.
BM25_WEIGHTS = (10.0, 6.0, 3.0, 3.0, 1.0)
MAX_TOKEN_CHARS = 40


def any_of(words: tuple[str, ...]) -> str:
    return " OR ".join(f'"{w[:MAX_TOKEN_CHARS]}"' for w in words)


def match(terms: list[str], *, any_word: bool = False, exclude: tuple[str, ...] = ()) -> str:
    """An FTS5 MATCH expression: all (or any) of `terms`, none of `exclude`."""
    expr = (" OR " if any_word else " AND ").join(terms)
    return f"({expr}) NOT ({any_of(exclude)})" if expr and exclude else expr


def hits(
    *,
    terms: list[str],
    any_word: bool,
    exclude: tuple[str, ...],
    where: str,
    params: list,
    limit: int,
    newest_bound: int | None,
) -> list[tuple[int, float]]:
    expr = match(terms, any_word=any_word, exclude=exclude)
    weights = ", ".join(str(w) for w in BM25_WEIGHTS)
    matches = (
        "FROM catalog_product_fts JOIN catalog_product p ON p.id = catalog_product_fts.rowid "
        f"WHERE catalog_product_fts MATCH %s AND {where}"
    )
    with connection.cursor() as cursor:
        oldest_scored = None
        if newest_bound:
            # Walking one word's matches newest first is cheap (one posting list, no scoring,
            # no join) and finds where the newest `newest_bound` of them start.
            cursor.execute(
                "SELECT rowid FROM catalog_product_fts WHERE catalog_product_fts MATCH %s "
                "ORDER BY rowid DESC LIMIT 1 OFFSET %s",
                [expr, newest_bound - 1],
            )
            oldest_scored = cursor.fetchone()
        bound, bound_params = "", []
        if oldest_scored is not None:
            bound, bound_params = " AND catalog_product_fts.rowid >= %s", [oldest_scored[0]]
        cursor.execute(
            f"SELECT p.id, bm25(catalog_product_fts, {weights}) AS score {matches}{bound} "
            "ORDER BY score LIMIT %s",
            [expr, *params, *bound_params, limit],
        )
        return [(int(pid), float(score)) for pid, score in cursor.fetchall()]


def count(*, terms: list[str], exclude: tuple[str, ...], where: str, params: list) -> int:
    sql = (
        "SELECT COUNT(*) FROM catalog_product_fts JOIN catalog_product p "
        f"ON p.id = catalog_product_fts.rowid WHERE catalog_product_fts MATCH %s AND {where}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [match(terms, exclude=exclude), *params])
        return int(cursor.fetchone()[0])


def matching_any(words: tuple[str, ...], product_ids: list[int]) -> set[int]:
    marks = ", ".join(["%s"] * len(product_ids))
    sql = (
        "SELECT rowid FROM catalog_product_fts "
        f"WHERE catalog_product_fts MATCH %s AND rowid IN ({marks})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [any_of(words), *product_ids])
        return {int(row[0]) for row in cursor.fetchall()}


def title_equals(text: str, tokens: list[str]) -> tuple[str, list]:
    """An FTS5 phrase query on the title column, then an exact, case-insensitive comparison."""
    phrase = 'title : "' + " ".join(tokens) + '"'
    sql = (
        "SELECT p.id FROM catalog_product_fts "
        "JOIN catalog_product p ON p.id = catalog_product_fts.rowid "
        "WHERE catalog_product_fts MATCH %s AND p.title = %s COLLATE NOCASE"
    )
    return sql, [phrase, text]
