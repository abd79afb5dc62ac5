"""Keyword search on PostgreSQL: `catalog_product.search_vector`, a generated tsvector column
with a GIN index, kept current by the database itself (catalog migration 0002, PostgreSQL
branch). See search.keyword for the contract.

The `meepo` text search configuration folds accents (unaccent) and stems English words (Snowball,
no stopword list, as FTS5's porter tokenizer), so "creme" finds "crème" and "pillows" "pillow".
Weights A-D carry FTS5's column weights: title A (1.0), brand B (0.6), category and tags C (0.3),
description D (0.1); ts_rank's length normalisation (1) plays BM25's document-length part.
"""

from __future__ import annotations

from search.keyword.base import MAX_TOKEN_CHARS, KeywordBackend

CONFIG = "meepo"
# ts_rank's weights, in its order {D, C, B, A}: description, category/tags, brand, title.
RANK_WEIGHTS = "{0.1, 0.3, 0.6, 1.0}"
_MATCHES = f"@@ to_tsquery('{CONFIG}', %s)"


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


class PostgresKeyword(KeywordBackend):
    newest_sql = (
        f"SELECT id FROM catalog_product WHERE search_vector {_MATCHES} "
        "ORDER BY id DESC LIMIT 1 OFFSET %s"
    )
    ranked_sql = (
        f"SELECT p.id, -ts_rank('{RANK_WEIGHTS}', p.search_vector, q, 1) AS score "
        f"FROM catalog_product p, to_tsquery('{CONFIG}', %s) q "
        "WHERE p.search_vector @@ q AND {where}{bound} ORDER BY score, p.id LIMIT %s"
    )
    bound_sql = " AND p.id >= %s"
    count_sql = f"SELECT COUNT(*) FROM catalog_product p WHERE p.search_vector {_MATCHES} AND {{where}}"  # fmt: skip
    any_sql = f"SELECT id FROM catalog_product WHERE search_vector {_MATCHES} AND id IN ({{ids}})"

    title_is_sql = "lower(p.title) = lower(%s)"

    def text(self, terms, *, any_word=False, exclude=()):
        return tsquery(terms, any_word=any_word, exclude=exclude)

    def title_equals(self, text, tokens):
        """A phrase query through the GIN index, then an exact, case-insensitive comparison."""
        sql = (
            "SELECT p.id FROM catalog_product p "
            f"WHERE p.search_vector @@ phraseto_tsquery('{CONFIG}', %s) "
            "AND lower(p.title) = lower(%s)"
        )
        return sql, [" ".join(tokens), text]


BACKEND = PostgresKeyword()
