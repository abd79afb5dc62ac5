"""Keyword search on PostgreSQL: `catalog_product.search_vector`, a generated tsvector column
with a GIN index, kept current by the database itself (catalog migration 0002, PostgreSQL
branch). See search.keyword for the contract.

The `meepo` text search configuration folds accents (unaccent) and stems English words (Snowball,
no stopword list, as FTS5's porter tokenizer), so "creme" finds "crème" and "pillows" "pillow".
Weights A-D carry FTS5's column weights: title A (1.0), brand B (0.6), category and tags C (0.3),
description D (0.1); ts_rank's length normalisation (1) plays BM25's document-length part.
"""

from __future__ import annotations

from django.db import connection

CONFIG = "meepo"
# ts_rank's weights, in its order {D, C, B, A}: description, category/tags, brand, title.
RANK_WEIGHTS = "{0.1, 0.3, 0.6, 1.0}"
MAX_TOKEN_CHARS = 40


def _lexeme(term: str) -> str:
    """'"word"*' (an FTS5-style term from selectors) -> "'word':*" for to_tsquery.

    Terms are \\w+ words (no quotes, backslashes or operators), quoted so to_tsquery reads each
    as one word, normalised by the configuration (accents folded, stemmed).
    """
    prefix = term.endswith("*")
    word = term.rstrip("*").strip('"')[:MAX_TOKEN_CHARS].replace("'", "").replace("\\", "")
    return f"'{word}'" + (":*" if prefix else "")


def tsquery(terms: list[str], *, any_word: bool = False, exclude: tuple[str, ...] = ()) -> str:
    """A to_tsquery text: all (or any) of `terms`, none of `exclude`."""
    expr = (" | " if any_word else " & ").join(_lexeme(t) for t in terms)
    if expr and exclude:
        return f"({expr}) & !({' | '.join(_lexeme(w) for w in exclude)})"
    return expr


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
    query = tsquery(terms, any_word=any_word, exclude=exclude)
    with connection.cursor() as cursor:
        oldest_scored = None
        if newest_bound:
            cursor.execute(
                "SELECT id FROM catalog_product "
                f"WHERE search_vector @@ to_tsquery('{CONFIG}', %s) "
                "ORDER BY id DESC LIMIT 1 OFFSET %s",
                [query, newest_bound - 1],
            )
            oldest_scored = cursor.fetchone()
        bound, bound_params = "", []
        if oldest_scored is not None:
            bound, bound_params = " AND p.id >= %s", [oldest_scored[0]]
        cursor.execute(
            f"SELECT p.id, -ts_rank('{RANK_WEIGHTS}', p.search_vector, q, 1) AS score "
            f"FROM catalog_product p, to_tsquery('{CONFIG}', %s) q "
            f"WHERE p.search_vector @@ q AND {where}{bound} ORDER BY score, p.id LIMIT %s",
            [query, *params, *bound_params, limit],
        )
        return [(int(pid), float(score)) for pid, score in cursor.fetchall()]


def count(*, terms: list[str], exclude: tuple[str, ...], where: str, params: list) -> int:
    sql = (
        "SELECT COUNT(*) FROM catalog_product p "
        f"WHERE p.search_vector @@ to_tsquery('{CONFIG}', %s) AND {where}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [tsquery(terms, exclude=exclude), *params])
        return int(cursor.fetchone()[0])


def matching_any(words: tuple[str, ...], product_ids: list[int]) -> set[int]:
    sql = (
        "SELECT id FROM catalog_product "
        f"WHERE search_vector @@ to_tsquery('{CONFIG}', %s) AND id = ANY(%s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [tsquery(list(words), any_word=True), list(product_ids)])
        return {int(row[0]) for row in cursor.fetchall()}


def title_equals(text: str, tokens: list[str]) -> tuple[str, list]:
    """A phrase query through the GIN index, then an exact, case-insensitive comparison."""
    sql = (
        "SELECT p.id FROM catalog_product p "
        f"WHERE p.search_vector @@ phraseto_tsquery('{CONFIG}', %s) "
        "AND lower(p.title) = lower(%s)"
    )
    return sql, [" ".join(tokens), text]
