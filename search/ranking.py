"""Ranking primitives of every search: candidates, one result per product, rank fusion, the
relevance floor, one result per GTIN and the shopper's sort orders.

Pure list work over `Candidate`s except two small reads (`selectors.candidate_rows`, unless
the caller passes them, and `products_matching_any`) and the index's noise calibration for the floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter

import numpy as np

from search import relevance, selectors
from search.timing import timed

# Reciprocal-rank fusion: score = sum(weight / (RRF_K + rank)). K = 60 is the constant from
# Cormack et al. (2009) that Marqo and Weaviate also default to; it keeps one list's top hit from
# drowning the other list.
RRF_K = 60
VISUAL_WEIGHT = 1.0
KEYWORD_WEIGHT = 1.0
# Added to an exact title or SKU match: more than any fused score can reach (2 / 61), so a shopper
# who types a product's exact name or SKU finds it first.
EXACT_BOOST = 1.0


@dataclass
class Candidate:
    product_id: int
    image_id: int | None = None
    score: float = 0.0
    visual_score: float | None = None
    visual_rank: int | None = None
    keyword_score: float | None = None
    keyword_rank: int | None = None
    exact: bool = False

    def copy(self) -> Candidate:
        """A shallow copy (`dataclasses.replace` re-runs __init__ and costs ~10x more; a search
        copies a few hundred candidates)."""
        twin = object.__new__(Candidate)
        twin.__dict__.update(self.__dict__)
        return twin


def collapse(scores, ids, owners, depth, exclude_product, exclude_assets) -> list[Candidate]:
    """One candidate per product (its best image); an image file already shown is not repeated.

    The same photo listed on several products (variants, re-listings) is a near-duplicate: only
    its best-ranked product stays, so duplicates cannot fill a page.
    """
    seen_products: set[int] = set()
    seen_assets: set[int] = set(exclude_assets)
    found: list[Candidate] = []
    # Bound once: a few hundred hits a search (~30% of the loop's cost).
    get, add_product, add_asset, append = (
        owners.get,
        seen_products.add,
        seen_assets.add,
        found.append,
    )
    for score, image_id in zip(scores.tolist(), ids.tolist(), strict=True):
        owner = get(image_id)
        if owner is None:
            continue
        product_id, asset_id = owner
        if product_id == exclude_product or product_id in seen_products or asset_id in seen_assets:
            continue
        add_product(product_id)
        add_asset(asset_id)
        # (product_id, image_id, score, visual_score, visual_rank), positionally
        append(Candidate(product_id, image_id, score, score, len(found)))
        if len(found) >= depth:
            break
    return found


def fuse(
    visual: list[Candidate],
    keyword: list[tuple[int, float]],
    exact: list[int],
    *,
    visual_weight: float | None = None,
    keyword_weight: float | None = None,
) -> list[Candidate]:
    """Reciprocal-rank fusion of the visual and keyword lists, exact matches first.

    The weights default to VISUAL_WEIGHT and KEYWORD_WEIGHT; `evaluate --tune` passes others to
    measure them without changing what the site serves. `visual` is not modified.
    """
    merged = _fused_unsorted(
        [c.copy() for c in visual], keyword, exact, visual_weight, keyword_weight
    )
    return sorted(merged, key=lambda c: (-c.score, c.product_id))


def fuse_in_place(
    visual: list[Candidate], keyword: list[tuple[int, float]], exact: list[int]
) -> list[Candidate]:
    """`fuse` (default weights) updating the `visual` candidates themselves (no copies: for a
    caller that owns them), ordered as a text search lists them: matches of the words (or SKU)
    first, then the look-alikes, each by fused score, then product id (fuse's order)."""
    merged = _fused_unsorted(visual, keyword, exact)
    words = [c for c in merged if c.keyword_rank is not None or c.exact]
    looks = [c for c in merged if c.keyword_rank is None and not c.exact]
    for part in (words, looks):  # two C-level stable sorts instead of a tuple key per candidate
        part.sort(key=_PRODUCT_ID)
        part.sort(key=_SCORE, reverse=True)
    return words + looks


_PRODUCT_ID, _SCORE = attrgetter("product_id"), attrgetter("score")


def _fused_unsorted(
    visual: list[Candidate],
    keyword: list[tuple[int, float]],
    exact: list[int],
    visual_weight: float | None = None,
    keyword_weight: float | None = None,
) -> list[Candidate]:
    """`fuse` before its sort, the `visual` candidates themselves updated."""
    visual_weight = VISUAL_WEIGHT if visual_weight is None else visual_weight
    keyword_weight = KEYWORD_WEIGHT if keyword_weight is None else keyword_weight
    merged: dict[int, Candidate] = {c.product_id: c for c in visual}
    for rank, (product_id, bm25) in enumerate(keyword):
        cand = merged.get(product_id)
        if cand is None:
            cand = merged[product_id] = Candidate(product_id)
        # FTS5's bm25() is negative, lower = better; flip it so every score reads "higher = better".
        cand.keyword_score, cand.keyword_rank = -bm25, rank
    for product_id in exact:
        cand = merged.get(product_id)
        if cand is None:
            cand = merged[product_id] = Candidate(product_id)
        cand.exact = True
    for cand in merged.values():
        visual_rank, keyword_rank = cand.visual_rank, cand.keyword_rank
        cand.score = (
            (visual_weight / (RRF_K + visual_rank + 1) if visual_rank is not None else 0)
            + (keyword_weight / (RRF_K + keyword_rank + 1) if keyword_rank is not None else 0)
            + (EXACT_BOOST if cand.exact else 0)
        )
    return list(merged.values())


def above_floor(
    visual: list[Candidate], params: relevance.FloorParams | None = None
) -> list[Candidate]:
    """The visual candidates of one text query that clear its relevance floor, re-ranked.
    `visual` and its candidates are not modified; when the kept ones are its head, already
    ranked 0, 1, ... (collapse's order: best first), they are returned as they are, not copied."""
    from search.index import get_index

    params = params or relevance.FloorParams.from_settings()
    if not visual or not params.enabled:
        return visual
    scores = [c.visual_score for c in visual]
    keep = relevance.floor_mask(scores, noise=get_index().noise, params=params)
    kept_count = int(np.count_nonzero(keep))
    if keep[:kept_count].all() and all(
        c.visual_rank == rank for rank, c in enumerate(visual[:kept_count])
    ):
        return visual[:kept_count]
    kept = [c.copy() for c, ok in zip(visual, keep.tolist(), strict=True) if ok]
    for rank, cand in enumerate(kept):
        cand.visual_rank = rank
    return kept


def drop_negatives(
    candidates: list[Candidate], negatives: tuple[str, ...], timings: dict[str, float]
) -> list[Candidate]:
    """Candidates minus those mentioning a minus-word (the keyword list already left them out)."""
    if not negatives:
        return candidates
    unchecked = [c.product_id for c in candidates if c.keyword_rank is None]
    with timed(timings, "db"):
        banned = selectors.products_matching_any(negatives, unchecked)
    return [c for c in candidates if c.product_id not in banned]


def one_per_gtin(
    candidates: list[Candidate],
    taken: frozenset[str] = frozenset(),
    rows: dict[int, selectors.CandidateRow] | None = None,
) -> list[Candidate]:
    """One candidate per GTIN, in one query: the same product at several stores is shown once,
    where its best-placed listing was, as its best offer (in stock first, then the cheapest;
    an exact match stays itself); the others are that result's offers, and pages stay full.
    GTINs in `taken` (the product whose look-alikes these are) are left out: its page lists
    them as offers. `rows`: the candidates' `selectors.candidate_rows`, when already read."""
    if rows is None:
        rows = selectors.candidate_rows([c.product_id for c in candidates])
    offers = {pk: (r.gtin, r.in_stock, r.price) for pk, r in rows.items() if r.gtin}
    if not offers:
        return candidates
    groups: dict[str, list[Candidate]] = {}
    for cand in candidates:
        if cand.product_id in offers:
            groups.setdefault(offers[cand.product_id][0], []).append(cand)

    def best_offer(cand: Candidate) -> tuple:
        _, in_stock, price = offers[cand.product_id]
        return (not in_stock, price is None, price or 0)

    kept = []
    for cand in candidates:
        gtin = offers[cand.product_id][0] if cand.product_id in offers else ""
        if not gtin:
            kept.append(cand)
        elif gtin in groups and gtin not in taken:
            group = groups.pop(gtin)
            kept.append(group[0] if group[0].exact else min(group, key=best_offer))
    return kept


def sort_candidates(
    candidates: list[Candidate],
    sort: str,
    rows: dict[int, selectors.CandidateRow] | None = None,
) -> list[Candidate]:
    """Candidates in the shopper's order; ties (and products without a price) keep relevance.
    `rows`: the candidates' `selectors.candidate_rows`, when already read."""
    if rows is None:
        rows = selectors.candidate_rows([c.product_id for c in candidates])
    keys = {pk: (r.price, r.first_seen_at) for pk, r in rows.items()}
    rank = {c.product_id: i for i, c in enumerate(candidates)}

    direction = 1 if sort == "price_asc" else -1

    def key(c: Candidate):
        price, seen = keys.get(c.product_id, (None, None))
        if sort == "newest":
            return (seen is None, -seen.timestamp() if seen else 0, rank[c.product_id])
        return (price is None, direction * price if price is not None else 0, rank[c.product_id])

    return sorted(candidates, key=key)
