"""Reads by id for a search page, compiled once per process: `IdQuery` (a `values_list` over an
`__in` list, its SQL built by the ORM once and widened per call) and `instances` (model
instances from its rows, as `Model.from_db` makes them). Used by search.selectors' hydration,
candidate rows and variants; tests/search/test_id_query.py holds them to the ORM's own answers.
"""

from __future__ import annotations

from django.db import connections
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init


class IdQuery:
    """A `values_list` query over an `__in` list of ids, compiled once per process and database.

    Building and compiling a queryset costs more CPU than running it for the few dozen ids of a
    page (bench/search_cpu). `build(ids)` makes the query; it is compiled once for one id, its
    `IN (%s)` widened per call to as many marks as ids (deduplicated, as the ORM's `__in` does),
    and rows get the ORM's own converters, so the values are the ORM's: decimals, aware
    datetimes, JSON. Falls back to the ORM for SQL it cannot widen.
    """

    def __init__(self, build) -> None:
        self.build = build
        self._compiled: dict[str, tuple] = {}
        self._db: str | None = None

    @property
    def db(self) -> str:
        """The database alias the query reads (the router's answer, asked once)."""
        if self._db is None:
            self._db = self.build([0]).db
        return self._db

    def rows(self, ids) -> list[tuple]:
        ids = list(dict.fromkeys(int(i) for i in ids))
        if not ids:
            return []
        alias = self.db
        compiled = self._compiled.get(alias)
        if compiled is None:
            compiled = self._compiled[alias] = self._compile(alias)
        sql, converters = compiled
        if sql is None:  # not widenable: the ORM
            return list(self.build(ids))
        db = connections[alias]
        with db.cursor() as cursor:
            cursor.execute(sql.replace("IN (%s)", f"IN ({', '.join(['%s'] * len(ids))})"), ids)
            rows = cursor.fetchall()
        if not converters:
            return [tuple(row) for row in rows]
        out = []
        for row in rows:
            row = list(row)
            for pos, (convs, expression) in converters:
                value = row[pos]
                for convert in convs:
                    value = convert(value, expression, db)
                row[pos] = value
            out.append(tuple(row))
        return out

    def _compile(self, alias: str) -> tuple:
        compiler = self.build([0]).query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        if list(params) != [0] or sql.count("IN (%s)") != 1:
            return None, None
        fields = [col[0] for col in compiler.select[: compiler.col_count]]
        return sql, list(compiler.get_converters(fields).items())


def instances(model, db: str, attnames: list[str]):
    """`Model.from_db(db, attnames, values)` for many rows, without running `Model.__init__` per
    row when no `pre_init`/`post_init` receiver listens for `model`: an instance whose `__dict__`
    holds the same loaded columns (the rest deferred) and whose state says "from `db`". For the
    ~100 instances of a page, __init__ walking every field of each cost most of the hydration."""
    if pre_init.has_listeners(model) or post_init.has_listeners(model):
        return lambda values: model.from_db(db, attnames, values)
    new = model.__new__

    def make(values):
        obj = new(model)
        state = obj._state = ModelState()
        state.adding, state.db = False, db
        obj.__dict__.update(zip(attnames, values, strict=True))
        return obj

    return make


def concrete_attnames(model, names) -> list[str]:
    """`names` (attnames) in the model's field order, as `Model.from_db` takes them."""
    return [f.attname for f in model._meta.concrete_fields if f.attname in names]
