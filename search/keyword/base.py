"""The part of keyword search every backend shares: the calls, their parameters, the bound on
how many matches a broad word scores. A backend (search.keyword.sqlite, .postgres) holds only its
full-text query text and its SQL.
"""

from __future__ import annotations

from django.db import connection

MAX_TOKEN_CHARS = 40


class KeywordBackend:
    """One database's keyword search. Every SQL string takes the backend's query text (`text`)
    as its first parameter; `{where}` is the filters' fragment over `catalog_product p`."""

    #: The id `OFFSET %s` places down the matches, newest first (the oldest one to score).
    newest_sql: str
    #: (product id, score; lower is better) of the matches, best first, `LIMIT %s`; `{bound}` is
    #: empty or `bound_sql`.
    ranked_sql: str
    #: Keeps matches from the given id on (its one parameter).
    bound_sql: str
    #: How many products match.
    count_sql: str
    #: Which of `{ids}` (one `%s` each) match.
    any_sql: str
    #: `p.title` equals the one parameter, case-insensitively (as `title_equals` compares).
    title_is_sql: str

    def text(
        self, terms: list[str], *, any_word: bool = False, exclude: tuple[str, ...] = ()
    ) -> str:
        """The full-text query: all (or any) of `terms` (quoted words from
        search.fts.fts_match_terms, the last maybe a prefix `"word"*`), none of `exclude`."""
        raise NotImplementedError

    def title_equals(self, text: str, tokens: list[str]) -> tuple[str, list]:
        """(SQL selecting the ids of products whose whole title equals `text`, case-insensitively,
        through the full-text index; its params)."""
        raise NotImplementedError

    def hits(
        self,
        *,
        terms: list[str],
        any_word: bool,
        exclude: tuple[str, ...],
        where: str,
        params: list,
        limit: int,
        newest_bound: int | None,
    ) -> list[tuple[int, float]]:
        text = self.text(terms, any_word=any_word, exclude=exclude)
        with connection.cursor() as cursor:
            bound, bound_params = "", []
            if newest_bound:
                # Walking one word's matches newest first is cheap (one posting list, no
                # scoring, no join) and finds where the newest `newest_bound` of them start.
                cursor.execute(self.newest_sql, [text, newest_bound - 1])
                oldest_scored = cursor.fetchone()
                if oldest_scored is not None:
                    bound, bound_params = self.bound_sql, [oldest_scored[0]]
            cursor.execute(
                _fill(self.ranked_sql, where=where, bound=bound),
                [text, *params, *bound_params, limit],
            )
            return [(int(pid), float(score)) for pid, score in cursor.fetchall()]

    def count(self, *, terms: list[str], exclude: tuple[str, ...], where: str, params: list) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                _fill(self.count_sql, where=where), [self.text(terms, exclude=exclude), *params]
            )
            return int(cursor.fetchone()[0])

    def matching_any(self, words: tuple[str, ...], product_ids: list[int]) -> set[int]:
        if not words or not product_ids:
            return set()
        text = self.text([f'"{w[:MAX_TOKEN_CHARS]}"' for w in words], any_word=True)
        ids = ", ".join(["%s"] * len(product_ids))
        with connection.cursor() as cursor:
            cursor.execute(_fill(self.any_sql, ids=ids), [text, *product_ids])
            return {int(row[0]) for row in cursor.fetchall()}


def _fill(template: str, **parts: str) -> str:
    """`template` with each `{name}` replaced (SQL has braces of its own: no str.format)."""
    for name, part in parts.items():
        template = template.replace("{" + name + "}", part)
    return template
