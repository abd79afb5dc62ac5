"""The per-process cache of ranked text lists (`signals.ranked`), kept as plain tuples.

A cached list of a few hundred `Candidate`s is a few hundred objects the garbage collector
walks in every full collection for as long as the entry lives: with 512 entries, ≈ 50 k of
them, most of what a worker's full collection walks (80-180 ms at 1 M products, a pause every
thread of that worker waits out: the p99 of a busy server). Kept as tuples of numbers they are
untracked after their first collection (CPython stops tracking a tuple that holds only atomic
values), and a hit rebuilds the candidates (≈ 0.5 µs each), which also means no caller can
change a cached list through the objects it was handed.
"""

from __future__ import annotations

from dataclasses import fields
from itertools import starmap
from operator import attrgetter
from typing import Any

from search.caching import TTLCache
from search.ranking import Candidate

# Candidate's fields in constructor order: a packed candidate is Candidate(*packed).
_FIELDS = tuple(f.name for f in fields(Candidate))
_values = attrgetter(*_FIELDS)


def pack_candidates(candidates: list[Candidate]) -> tuple[tuple, ...]:
    return tuple(map(_values, candidates))


def unpack_candidates(packed: tuple[tuple, ...]) -> list[Candidate]:
    return list(starmap(Candidate, packed))


class RankedCache:
    """`TTLCache` of ranked lists whose `candidates` are stored packed (see the module doc).
    `kind` rebuilds the cached object from its fields (signals.Ranked)."""

    def __init__(self, size: int, ttl: float, kind: type) -> None:
        self._cache = TTLCache(size, ttl)
        self._kind = kind

    def get(self, key) -> Any | None:
        stored = self._cache.get(key)
        if stored is None:
            return None
        packed, rest = stored
        return self._kind(
            unpack_candidates(packed), *(list(v) if was_list else v for v, was_list in rest)
        )

    def put(self, key, ranked) -> None:
        """Store `ranked` (a dataclass whose first field is `candidates`); its other list
        fields are kept as tuples and handed back as lists."""
        values = [getattr(ranked, f.name) for f in fields(ranked)[1:]]
        rest = tuple((tuple(v), True) if isinstance(v, list) else (v, False) for v in values)
        self._cache.put(key, (pack_candidates(ranked.candidates), rest))

    def clear(self) -> None:
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)
