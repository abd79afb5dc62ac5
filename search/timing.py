"""Where a search's time went: milliseconds per stage (encode, ann, db...), for `Server-Timing`."""

from __future__ import annotations

import time


class timed:
    """Add the time spent in the block to `timings[stage]`.

    A class rather than a @contextmanager generator: a search enters ~15 of these, and the
    generator machinery cost a few times the clock reads it wraps."""

    __slots__ = ("_stage", "_start", "_timings")

    def __init__(self, timings: dict[str, float], stage: str) -> None:
        self._timings, self._stage = timings, stage

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        elapsed = (time.perf_counter() - self._start) * 1000
        self._timings[self._stage] = self._timings.get(self._stage, 0.0) + elapsed
