"""The ranked-list cache keeps numbers, not Candidate objects: the garbage collector stops
walking its entries, and what comes back equals what went in."""

import gc

from search.ranked_cache import RankedCache, pack_candidates, unpack_candidates
from search.ranking import Candidate
from search.signals import Ranked

CANDIDATES = [
    Candidate(7, 70, 0.5, 0.4, 0, 12.5, 3, True),
    Candidate(3),
    Candidate(9, None, 0.016, None, None, 4.0, 0, False),
]


def _ranked(**changes) -> Ranked:
    values = dict(candidates=[Candidate(*vars(c).values()) for c in CANDIDATES], status="ok",
                  total=40, total_is_lower_bound=True, every_match=[(7, -1.5), (9, -0.5)],
                  every_exact=[7])  # fmt: skip
    values.update(changes)
    return Ranked(**values)


def test_a_hit_equals_what_was_put_with_lists_as_lists():
    cache = RankedCache(8, 60, Ranked)
    cache.put("a", _ranked())
    cache.put("b", _ranked(every_match=None, every_exact=None, candidates=[]))

    assert cache.get("a") == _ranked()
    assert isinstance(cache.get("a").every_match, list)
    assert isinstance(cache.get("a").every_exact, list)
    assert cache.get("b") == _ranked(every_match=None, every_exact=None, candidates=[])
    assert cache.get("missing") is None


def test_entries_hold_no_objects_the_collector_walks():
    cache = RankedCache(8, 60, Ranked)
    cache.put("a", _ranked())
    gc.collect()  # CPython untracks all-atomic tuples when a collection sees them
    gc.collect()  # ... and then the tuples that held only those

    stored = cache._cache.get("a")
    assert not gc.is_tracked(stored[0])
    assert not any(gc.is_tracked(row) for row in stored[0])
    assert not any(isinstance(o, Candidate) for o in gc.get_referents(*stored[0]))


def test_changing_a_returned_list_does_not_change_the_cache():
    cache = RankedCache(8, 60, Ranked)
    cache.put("a", _ranked())

    got = cache.get("a")
    got.candidates[0].score = 99.0
    got.candidates.pop()
    got.every_match.append((1, 0.0))

    assert cache.get("a") == _ranked()


def test_pack_round_trip_keeps_every_field():
    assert unpack_candidates(pack_candidates(CANDIDATES)) == CANDIDATES
    assert pack_candidates(CANDIDATES)[0] == (7, 70, 0.5, 0.4, 0, 12.5, 3, True)
