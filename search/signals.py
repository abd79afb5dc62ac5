"""The signals a text search fuses (visual, keyword, exact) and the process cache of ranked
results; the visual candidates also serve photo and similar-product searches.

Visual: CLIP text vector -> ANN over image vectors (filters pushed into the index as allowed ids,
from the columnar snapshot when it serves them) -> one candidate per product (its best image).
Keyword: FTS5/BM25 (or tsvector) hits under the same filters, plus zero-shot attribute matches.
Exact: title/SKU/GTIN matches, which go first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from search import live_rows, relevance, selectors, snapshot
from search.exceptions import IndexNotReady, ModelNotAvailable
from search.filters import SearchFilters
from search.ranked_cache import RankedCache
from search.ranking import Candidate, above_floor, collapse, drop_negatives, fuse_in_place
from search.timing import timed

logger = logging.getLogger(__name__)

# Images fetched from the index per wanted product: products have a few images each, and images
# of one product must collapse to one result without leaving the page short.
IMAGES_PER_PRODUCT = 2
# Visual candidates fetched per wanted product when the query has minus-words ("mug -ceramic"):
# the products that mention them are dropped after ranking.
NEGATIVE_DEPTH_FACTOR = 3
# A price or stock filter ranks its structural superset and checks the hits now only when the
# rows to check are at most this share of the superset (see `_worth_checking`).
CHECK_SHARE_MAX = 0.5
# Exact matches listed at most (selectors.exact_match_ids' limit).
EXACT_LIMIT = 5
RESULT_CACHE_SIZE = 512
RESULT_CACHE_TTL_SECONDS = 60.0


def index_version() -> str | None:
    """The published index version this process searches, or None when there is none."""
    from search.index import get_index

    try:
        return str(get_index().version)
    except (IndexNotReady, ModelNotAvailable):
        return None


def visual_candidates(
    vectors: NDArray[np.float32],
    *,
    filters: SearchFilters,
    depth: int,
    timings: dict[str, float],
    exclude_product: int | None = None,
    exclude_assets: frozenset[int] = frozenset(),
) -> list[Candidate]:
    """Best image per product for one or more query vectors, best first, at most `depth`."""
    from search.index import get_index

    index = get_index()
    snap = snapshot.for_index(index)  # None unless MEEPO_SEARCH_SNAPSHOT
    k = depth * IMAGES_PER_PRODUCT
    with timed(timings, "db"):
        allowed, check_now = _allowed_rows(index, snap, filters, k)
    if allowed is not None:
        k = min(k, allowed.count)
    if k == 0:
        return []
    with timed(timings, "ann"):
        hits = [
            index.rank_rows(v, allowed, allowed.count)
            if check_now
            else index.search(v, k, allowed=allowed)
            for v in np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        ]
    if check_now:
        with timed(timings, "db"):
            hits = _passing_now(index, snap, hits, filters, k)
    all_scores = np.concatenate([s for s, _ in hits])
    all_ids = np.concatenate([i for _, i in hits])
    order = np.argsort(-all_scores, kind="stable")
    with timed(timings, "db"):
        hit_ids = np.unique(all_ids).tolist()
        owners = snap.fresh_owners(hit_ids) if snap else selectors.image_products(hit_ids)
    return collapse(
        all_scores[order], all_ids[order], owners, depth, exclude_product, exclude_assets
    )


def _allowed_rows(index, snap, filters: SearchFilters, k: int):
    """(the index rows a filter allows, None for all; whether its hits must be checked now).

    With a snapshot of this version (kept per version and filter by `index.allowed_rows`):
    structural filters are its rows; price and stock filters are its rows as of the build,
    corrected for the products changed since (search.live_rows: the set the database would
    list). Past live_rows.MAX_CHANGED changes, a filter whose structural part is small and
    mostly passes ranks that superset and keeps the hits that pass now (`_passing_now`). Else
    the database lists the allowed ids (cached briefly by `selectors.allowed_image_ids`)."""
    if filters.is_empty:
        return None, False
    if snap is not None and snap.aligned_with(index):
        if filters.is_structural:
            return index.allowed_rows(("rows", filters), lambda: snap.allowed_rows(filters)), False
        delta = live_rows.changed_products(snap, filters)
        if delta is not None:
            return _corrected_rows(index, snap, filters, *delta), False
        superset = _checkable_superset(index, snap, filters, k)
        if superset is not None:
            return superset, True
    return index.allowed_for_ids(selectors.allowed_image_ids(filters=filters)), False


def _corrected_rows(index, snap, filters: SearchFilters, changed: list[int], passing: list[int]):
    built = index.allowed_rows(
        ("as of build", filters), lambda: snap.allowed_rows(filters, as_of_build=True)
    )
    if not changed:
        return built
    return index.allowed_rows(
        ("live", filters, tuple(sorted(changed)), tuple(sorted(passing))),
        lambda: live_rows.live_rows(snap, filters, built.positions, changed, passing),
    )


def _checkable_superset(index, snap, filters: SearchFilters, k: int):
    from search.index import EXACT_SUBSET_MAX

    part = filters.structural()
    if part.is_empty:
        return None
    superset = index.allowed_rows(
        ("superset", part), lambda: snap.allowed_rows(part, active_now=True)
    )
    if superset.count <= EXACT_SUBSET_MAX and _worth_checking(snap, superset, filters, k):
        return superset
    return None


def _worth_checking(snap, superset, filters: SearchFilters, k: int) -> bool:
    """Whether checking ranked hits now beats the database's own filtered query: the rows to
    check (down to the k-th that passed at the build) are at most CHECK_SHARE_MAX of the
    superset, which that query scans (a primary-key check costs ~2x per row; bench/filtered.py),
    or fit in one check query."""
    passed = int(np.count_nonzero(snap.mask(filters, superset.positions, active_now=True)))
    needed = superset.count if passed == 0 else min(superset.count, k * superset.count / passed)
    return needed <= max(CHECK_SHARE_MAX * superset.count, live_rows.CHECK_CHUNK)


def _passing_now(index, snap, ranked, filters: SearchFilters, k: int):
    """Per query vector, its first k ranked rows whose product passes `filters` now, as (scores,
    ids); each product checked at most once. The first check covers the ranking down to its
    k-th row that passed at the build (plus a margin), so one query usually settles it; more
    rows are checked in doubling chunks when too many changed."""
    verdict: dict[int, bool] = {}
    out = []
    for scores, rows in ranked:
        products = snap.cols["product"][rows].tolist()
        at_build = np.cumsum(snap.mask(filters, rows, active_now=True))
        step = int(np.searchsorted(at_build, k)) + 1 + k // 8 + 16
        keep, start = [], 0
        while len(keep) < k and start < len(rows):
            chunk = products[start : start + step]
            unknown = list({p for p in chunk if p not in verdict})
            if unknown:
                passing = live_rows.passing_product_ids(unknown, filters)
                verdict.update((p, p in passing) for p in unknown)
            keep += [start + n for n, p in enumerate(chunk) if verdict[p]]
            start, step = start + len(chunk), step * 2
        keep = np.asarray(keep[:k], dtype=np.int64)
        out.append((scores[keep], np.asarray(index.ids[rows[keep]], dtype=np.int64)))
    return out


@dataclass
class TextSignals:
    """What each ranking signal found for a text query, before fusion (see `text_signals`)."""

    visual: list[Candidate]
    keyword: list[tuple[int, float]]  # (product id, bm25; lower is better), best first
    exact: list[int]
    negatives: tuple[str, ...]
    status: str  # "ok" or "not_ready" (no visual side)
    # The visual list was full at its depth even after the floor: more visual matches exist.
    visual_full: bool = False
    # Every all-words keyword hit (before attribute matches) when known (up to `collect`), so a
    # narrower filter's list is these less the products failing it (`within`). None: cut.
    every_match: list[tuple[int, float]] | None = None
    # The exact matches when fewer than EXACT_LIMIT: every one, so a narrower filter's are
    # these less the products failing it (`text_signals(within_exact=...)`). None: cut.
    every_exact: list[int] | None = None


def text_signals(
    query: str,
    *,
    filters: SearchFilters,
    depth: int,
    timings: dict[str, float] | None = None,
    floor: relevance.FloorParams | None = None,
    within: list[tuple[int, float]] | None = None,
    within_exact: list[int] | None = None,
    collect: int = 0,
) -> TextSignals:
    """The visual, keyword and exact lists a text search fuses, each `depth` deep at most.

    Visual hits are cut at the relevance floor (`floor`, default from settings; pass
    `FloorParams(enabled=False)` for the raw list and `above_floor` to apply other parameters).

    `within`: the `every_match` of this query at this depth under wider filters (the
    facet-removed search a filtered page ranks anyway for its disjunctive counts). It holds
    every keyword match, so the keyword list here is its hits that pass `filters` now, in
    order and with their scores: one primary-key query (~0.2 ms at 1 M) instead of a second
    keyword search (~2.5 ms); the same list (BM25 does not depend on the filters).
    `within_exact`: its `every_exact`, likewise (every exact match, in id order): nothing to
    check when it is empty (most queries name no title or SKU).

    This is the ranking path of `search_products`; `search.evaluation` measures each list alone
    and fused through it, so what is measured is what shoppers get.
    """
    from search.encoder import encode_text
    from search.index import get_index

    timings = {} if timings is None else timings
    query, negatives = selectors.split_negatives(query)
    status = "ok"
    visual: list[Candidate] = []
    visual_full = False
    try:
        get_index()  # cheap, and fails fast before the model is loaded for nothing
        with timed(timings, "encode"):
            vector = encode_text(query)
        # Minus-words remove candidates afterwards: fetch more so the page stays full.
        visual_depth = depth * (NEGATIVE_DEPTH_FACTOR if negatives else 1)
        visual = visual_candidates(vector, filters=filters, depth=visual_depth, timings=timings)
        full = len(visual) >= visual_depth
        visual = above_floor(visual, floor)
        visual_full = full and len(visual) >= visual_depth
    except (IndexNotReady, ModelNotAvailable) as exc:
        logger.info("visual search unavailable, keyword results only: %s", exc)
        status = "not_ready"
    with timed(timings, "db"):
        keyword, every_match = _keyword_list(query, filters, depth, negatives, within, collect)
        if not keyword and status != "ok":
            # Without the visual side, "any of the words" is better than nothing at all.
            keyword = selectors.keyword_hits(
                query=query, filters=filters, limit=depth, any_word=True, exclude=negatives
            )
        keyword = _with_attribute_matches(keyword, query, filters, depth, negatives)
        exact = _exact_matches(query, filters, within_exact)
    every_exact = exact if len(exact) < EXACT_LIMIT else None
    return TextSignals(visual, keyword, exact, negatives, status, visual_full, every_match, every_exact)  # fmt: skip


def _keyword_list(query, filters, depth: int, negatives, within, collect: int):
    """(the keyword list, at most `depth`; every match when known: `within` less the products
    failing `filters` now, or a search that found fewer than asked (the database's cut: `depth`))."""
    if within is not None:
        passing = _passing(filters, [pid for pid, _ in within])
        found, complete = [hit for hit in within if hit[0] in passing], True
    else:
        # Only where the index answers whole (no live-check windows a larger limit could push
        # past their bound): structural filters without attributes.
        whole = filters.is_structural and not any(v for _, v in filters.attributes)
        collect = collect if live_rows.fast() and whole else 0
        found = selectors.keyword_hits(query=query, filters=filters, limit=depth, exclude=negatives, collect=collect)  # fmt: skip
        complete = len(found) < depth or depth < len(found) < collect
    return found[:depth], (found if complete else None)


def _passing(filters: SearchFilters, product_ids: list[int]) -> set[int]:
    """Those of `product_ids` passing `filters` now (live_rows.passing_now)."""
    from search.index import get_index

    try:
        return live_rows.passing_now(snapshot.for_index(get_index()), product_ids, filters)
    except (IndexNotReady, ModelNotAvailable):
        return live_rows.passing_product_ids(product_ids, filters)


def _exact_matches(query: str, filters: SearchFilters, within: list[int] | None) -> list[int]:
    """`selectors.exact_match_ids`, or (lean data path) those of a wider search's complete list
    that pass `filters` now: no query when it is empty (most queries name no title or SKU)."""
    if within is None or not live_rows.fast():
        return selectors.exact_match_ids(query=query, filters=filters, limit=EXACT_LIMIT)
    if not within:
        return []
    passing = _passing(filters, within)
    return [pid for pid in within if pid in passing]


def _with_attribute_matches(
    keyword: list[tuple[int, float]],
    query: str,
    filters: SearchFilters,
    depth: int,
    negatives: tuple[str, ...],
) -> list[tuple[int, float]]:
    """A query that only names zero-shot labels ("navy", "striped linen") also matches the
    products labelled so from their photos, after the word matches (score 0): "navy" finds a
    navy shirt whose title never says so."""
    from search.attributes import attribute_match_ids

    if len(keyword) >= depth or not selectors.may_name_attributes(query):
        return keyword
    seen = {pid for pid, _ in keyword}
    extra = [
        pid
        for pid in attribute_match_ids(query=query, filters=filters, limit=depth)
        if pid not in seen
    ]
    banned = selectors.products_matching_any(negatives, extra) if negatives else set()
    return keyword + [(pid, 0.0) for pid in extra if pid not in banned][: depth - len(keyword)]


@dataclass
class Ranked:
    candidates: list[Candidate]
    status: str
    total: int
    total_is_lower_bound: bool
    every_match: list[tuple[int, float]] | None = None  # TextSignals.every_match
    every_exact: list[int] | None = None  # TextSignals.every_exact


_result_cache = RankedCache(RESULT_CACHE_SIZE, RESULT_CACHE_TTL_SECONDS, Ranked)


def text_candidates(
    query: str,
    filters: SearchFilters,
    depth: int,
    timings: dict[str, float],
    within: list[tuple[int, float]] | None = None,
    within_exact: list[int] | None = None,
    collect: int = 0,
) -> Ranked:
    signals = text_signals(
        query,
        filters=filters,
        depth=depth,
        timings=timings,
        within=within,
        within_exact=within_exact,
        collect=collect,
    )
    # Visual candidates fresh from `visual_candidates`: this search's own, fused without copies.
    fused = drop_negatives(
        fuse_in_place(signals.visual, signals.keyword, signals.exact), signals.negatives, timings
    )
    total = len(fused)
    if len(signals.keyword) >= depth:
        # The ranked keyword list was cut at its depth: count every keyword match exactly.
        positive, _ = selectors.split_negatives(query)
        with timed(timings, "db"):
            counted = selectors.keyword_count(
                query=positive, filters=filters, exclude=signals.negatives
            )
        total += max(0, counted - sum(c.keyword_rank is not None for c in fused))
    return Ranked(
        fused,
        signals.status,
        total,
        signals.visual_full,
        signals.every_match,
        signals.every_exact,
    )


def ranked(
    query: str,
    filters: SearchFilters,
    depth: int,
    timings: dict[str, float],
    wider: Ranked | None = None,
    collect: int = 0,
) -> tuple[Ranked, bool]:
    """A text query's ranked results (cached per process), and whether they came from the cache.

    `wider`: this query's ranked results at this depth under wider filters, ranked just now:
    when its keyword list holds every match, this one's is cut from it (`text_signals`).
    `collect`: keep up to this many keyword matches for such a narrower search to cut from."""
    floor = relevance.FloorParams.from_settings()
    key = ("text", query, filters, depth, index_version(), floor)
    ranked = _result_cache.get(key)
    if ranked is not None:
        return ranked, True
    every = wider.every_match if wider is not None else None
    exact = wider.every_exact if wider is not None else None
    ranked = text_candidates(query, filters, depth, timings, every, exact, collect)
    _result_cache.put(key, ranked)
    return ranked, False


def clear_cache() -> None:
    """Forget every cached ranked list (tests; a worker after a catalogue change)."""
    _result_cache.clear()
