"""The relevance floor for visual hits: a result list that ends where relevance ends.

CLIP's text-to-image cosines are not calibrated. A query's best image scores about the same
whether the shop sells the thing or not, and where "about the same" lies depends on the model
and on the catalogue (the more images, the higher the best score a meaningless query reaches).
So the floor is measured per index: when `build_index` publishes a version it searches
`NOISE_QUERIES` random text queries (pseudo-words and random words of the model's vocabulary,
seeded) against it and stores each one's best score in the manifest (`relevance.noise_best`,
sorted; `NoiseProfile`). At query time a visual hit stays only when

1. its score beats the `percentile`-th percentile of those scores: it does better than what a
   meaningless query reaches at the top of this very index, and
2. it is within `margin` of the query's own best visual score: the list ends where the query's
   matches thin out, not where the catalogue does.

Keyword and exact hits never pass through here: they are matches by definition. Without a
noise profile (an index built before this, or built while the model could not load) only the
margin applies. Photo and similar-product searches compare images with images, whose scores
live on another scale; they are not floored (their lists are "most similar first" by intent).

`FloorParams` is the tunable part (settings `MEEPO_RELEVANCE_*`; `manage.py evaluate --tune`
may search over it); `floor_mask` applies it.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

NOISE_QUERIES = 128
NOISE_SEED = 20261201
# Percentiles written to the manifest for people to read; the floor uses the full sorted list.
REPORTED_PERCENTILES = (50, 75, 90, 95, 99)
_VOWELS = "aeiou"
_CONSONANTS = "".join(c for c in string.ascii_lowercase if c not in _VOWELS)


@dataclass(frozen=True)
class FloorParams:
    """How strict the floor is. Higher `percentile` or smaller `margin` = fewer visual hits."""

    percentile: float = 95.0  # of the noise queries' best scores; 0 disables this test
    margin: float = 0.08  # cosine below the query's best visual hit; <= 0 disables this test
    enabled: bool = True
    # Which noise queries calibrate: "all", "pseudo" (made-up words: the purest null) or
    # "words" (random real words: in a broad catalogue some of them truly match something).
    noise: str = "all"

    @classmethod
    def from_settings(cls) -> FloorParams:
        from django.conf import settings

        return cls(
            percentile=float(settings.MEEPO_RELEVANCE_PERCENTILE),
            margin=float(settings.MEEPO_RELEVANCE_MARGIN),
            enabled=bool(settings.MEEPO_RELEVANCE_FLOOR),
        )


@dataclass(frozen=True)
class NoiseProfile:
    """The best score of each random text query against one index version, ascending."""

    best: tuple[float, ...]
    # The same scores split by kind of query (empty when not recorded).
    pseudo: tuple[float, ...] = ()
    words: tuple[float, ...] = ()

    def threshold(self, percentile: float, noise: str = "all") -> float:
        """The score a hit must beat: this percentile of the noise queries' best scores.
        Kept per profile (one per index version): ~90 us of every text search for 1,000 scores."""
        kept = self.__dict__.setdefault("_thresholds", {})  # not a field: eq, hash, repr ignore it
        key = (percentile, noise)
        found = kept.get(key)
        if found is None:
            found = kept[key] = self._threshold(percentile, noise)
        return found

    def _threshold(self, percentile: float, noise: str) -> float:
        scores = {"pseudo": self.pseudo, "words": self.words}.get(noise) or self.best
        if not scores or percentile <= 0:
            return -np.inf
        return float(np.percentile(np.asarray(scores), min(percentile, 100.0)))

    def to_manifest(self) -> dict[str, Any]:
        return {
            "method": "random_text",
            "queries": len(self.best),
            "seed": NOISE_SEED,
            "noise_best": [round(s, 5) for s in self.best],
            "noise_best_pseudo": [round(s, 5) for s in self.pseudo],
            "noise_best_words": [round(s, 5) for s in self.words],
            "percentiles": {str(p): round(self.threshold(p), 5) for p in REPORTED_PERCENTILES},
        }

    @classmethod
    def from_manifest(cls, manifest: Any) -> NoiseProfile | None:
        if isinstance(manifest, dict):
            section = manifest.get("relevance") or {}
        else:
            section = getattr(manifest, "relevance", None) or {}

        def scores(key: str) -> tuple[float, ...]:
            return tuple(sorted(float(s) for s in section.get(key) or []))

        best = scores("noise_best")
        if not best:
            return None
        return cls(best, scores("noise_best_pseudo"), scores("noise_best_words"))


def floor_for(best_score: float, noise: NoiseProfile | None, params: FloorParams) -> float:
    """The lowest score that may stay for a query whose best visual hit scored `best_score`.

    The noise test is strict (a hit must *beat* the percentile), the margin test inclusive; this
    returns the larger of the two bounds, for display and for the evaluation command.
    """
    bounds = [-np.inf]
    if params.margin > 0:
        bounds.append(best_score - params.margin)
    if noise is not None and params.percentile > 0:
        bounds.append(noise.threshold(params.percentile, params.noise))
    return float(max(bounds))


def floor_mask(
    scores: NDArray[np.floating] | Sequence[float],
    *,
    noise: NoiseProfile | None,
    params: FloorParams,
) -> NDArray[np.bool_]:
    """Which of one query's visual scores clear its floor (any order; True = keep)."""
    scores = np.asarray(scores, dtype=np.float64)
    keep = np.ones(len(scores), dtype=bool)
    if not params.enabled or not len(scores):
        return keep
    if params.margin > 0:
        keep &= scores >= scores.max() - params.margin - 1e-9
    if noise is not None and params.percentile > 0:
        keep &= scores > noise.threshold(params.percentile, params.noise)
    return keep


def random_text_queries(
    n: int = NOISE_QUERIES, *, seed: int = NOISE_SEED, vocabulary: Sequence[str] = ()
) -> list[str]:
    """`n` meaningless queries of one to three words, the same every time for one vocabulary.

    Half are pronounceable pseudo-words ("bralotu kemish"), half random words of `vocabulary`
    (the model's own, so the queries look like what shoppers type, not like line noise); with an
    empty vocabulary all are pseudo-words.
    """
    rng = random.Random(seed)
    words = sorted({w for w in vocabulary if w.isalpha() and len(w) >= 3})
    queries = []
    for i in range(n):
        count = rng.randint(1, 3)
        if words and i % 2:
            queries.append(" ".join(rng.choice(words) for _ in range(count)))
        else:
            queries.append(" ".join(_pseudo_word(rng) for _ in range(count)))
    return queries


def _pseudo_word(rng: random.Random) -> str:
    syllables = rng.randint(2, 4)
    return "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(syllables))


def measure_noise(
    search: Callable[[NDArray[np.float32]], NDArray[np.float32]],
    query_vectors: NDArray[np.float32],
    kinds: Sequence[str] = (),
) -> NoiseProfile:
    """Noise profile from random query vectors: `search(Q)` returns each row's best score.
    `kinds` ("pseudo" or "words" per row, as `query_kinds` says) splits the scores too."""
    if not len(query_vectors):
        return NoiseProfile(())
    best = np.asarray(search(np.ascontiguousarray(query_vectors, dtype=np.float32))).ravel()

    def of(kind: str) -> tuple[float, ...]:
        return tuple(sorted(float(s) for s, k in zip(best, kinds, strict=True) if k == kind))

    split = len(kinds) == len(best)
    return NoiseProfile(
        tuple(sorted(float(s) for s in best)),
        of("pseudo") if split else (),
        of("words") if split else (),
    )


def query_kinds(n: int, *, vocabulary: Sequence[str] = ()) -> list[str]:
    """What each of `random_text_queries(n, vocabulary=...)`'s queries is: "pseudo" or "words"."""
    has_words = any(w.isalpha() and len(w) >= 3 for w in vocabulary)
    return ["words" if has_words and i % 2 else "pseudo" for i in range(n)]
