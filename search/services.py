"""The search core under every page and API: text, photo and similar-product search.

Text: query -> CLIP text vector (cached per process) -> ANN over image vectors (filters pushed into
the index as allowed ids) -> one result per product (its best image) -> reciprocal-rank fusion with
FTS5/BM25 keyword hits (same filters in SQL) and exact title/SKU matches -> hydrated in a constant
number of queries. Every hit says which signals matched and with what score.

When the model or index is missing, text search degrades to keyword results and says so
(`SearchPage.visual_status`); photo and similar searches, which need the index, raise
`IndexNotReady` (or `ModelNotAvailable`) for the caller to answer 503.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from numpy.typing import NDArray

from catalog.models import Product, ProductImage, ProductVariant
from search import photo_queries, relevance, selectors, snapshot, spelling
from search.exceptions import IndexNotReady, ModelNotAvailable
from search.selectors import SearchFilters

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

# Reciprocal-rank fusion: score = sum(weight / (RRF_K + rank)). K = 60 is the constant from
# Cormack et al. (2009) that Marqo and Weaviate also default to; it keeps one list's top hit from
# drowning the other list.
RRF_K = 60
VISUAL_WEIGHT = 1.0
KEYWORD_WEIGHT = 1.0
# Added to an exact title or SKU match: more than any fused score can reach (2 / 61), so a shopper
# who types a product's exact name or SKU finds it first.
EXACT_BOOST = 1.0
# Candidates ranked per list. Pages are cut from a list this deep, so page 2 follows page 1
# without gaps or repeats; going past it deepens the list in the same steps.
CANDIDATE_DEPTH = 120
# Images fetched from the index per wanted product: products have a few images each, and images
# of one product must collapse to one result without leaving the page short.
IMAGES_PER_PRODUCT = 2
MAX_QUERY_CHARS = 200
# Visual candidates fetched per wanted product when the query has minus-words ("mug -ceramic"):
# the products that mention them are dropped after ranking.
NEGATIVE_DEPTH_FACTOR = 3
# Spelling help is looked for when a query finds fewer results than this; with none at all, the
# corrected query is searched instead ("Showing results for teapot; search instead for teapto").
SPELLING_MAX_RESULTS = 3
RESULT_CACHE_SIZE = 512
RESULT_CACHE_TTL_SECONDS = 60.0

_result_cache = selectors._TTLCache(RESULT_CACHE_SIZE, RESULT_CACHE_TTL_SECONDS)

# Orders a shopper can ask for. A text search is first ranked by relevance; the other orders
# re-sort its candidate list (the CANDIDATE_DEPTH best matches), so "cheapest first" means the
# cheapest of the products that match, never the cheapest product in the catalogue.
RELEVANCE = "relevance"
SORT_CHOICES = [
    (RELEVANCE, "Best match"),
    ("price_asc", "Price: low to high"),
    ("price_desc", "Price: high to low"),
    ("newest", "Newest"),
]
_SORTS = frozenset(value for value, _ in SORT_CHOICES)


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


@dataclass
class SearchHit:
    product: Product
    image: ProductImage | None
    score: float
    visual_score: float | None
    keyword_score: float | None
    exact: bool
    # Filled by _hits: the variant whose picture a visual search matched, all the product's
    # variants, and the same product (same GTIN) at other stores, cheapest first.
    variant: ProductVariant | None = None
    variants: list[ProductVariant] = field(default_factory=list)
    offers: list[Product] = field(default_factory=list)
    # The first visual-only hit of a text search by relevance: the "Similar looking items"
    # section starts here.
    starts_similar: bool = False

    @property
    def matches_words(self) -> bool:
        return self.exact or self.keyword_score is not None

    @property
    def other_stores(self) -> int:
        return len({o.store_id for o in self.offers})

    @property
    def cheapest_offer(self) -> Product | None:
        """The cheapest other store's offer in stock, in this product's currency ("from €X")."""
        currency = self.product.currency
        return next(
            (
                o
                for o in self.offers
                if o.price is not None and o.currency == currency and o.availability == "in_stock"
            ),
            None,
        )

    @property
    def signals(self) -> list[str]:
        found = ["exact"] if self.exact else []
        if self.visual_score is not None:
            found.append("visual")
        if self.keyword_score is not None:
            found.append("keyword")
        return found


@dataclass
class SearchPage:
    mode: str  # "text", "browse", "image", "similar" or "empty"
    query: str = ""
    hits: list[SearchHit] = field(default_factory=list)
    offset: int = 0
    limit: int = 24
    has_more: bool = False
    facets: dict[str, list[tuple]] = field(default_factory=dict)
    visual_status: str = "ok"  # "ok", "not_ready" or "unused"
    notice: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage
    cached: bool = False
    sort: str = RELEVANCE  # one of SORT_CHOICES
    # Results in all (keyword matches exactly, visual hits that clear the relevance floor);
    # `total_is_lower_bound` when the visual list was still full at its depth. None: not counted.
    total: int | None = None
    total_is_lower_bound: bool = False
    suggestion: str = ""  # "Did you mean …" (the query had few results)
    # (lowest, highest, currency) of the results' prices, in their most common currency.
    price_range: tuple | None = None
    corrected_from: str = ""  # the shopper's words, when these are results for a correction
    photo: str = ""  # a photo search's id (search.photo_queries): its results' URL

    @property
    def next_offset(self) -> int:
        return self.offset + self.limit


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1000


def normalise_query(query: str) -> str:
    """Collapse whitespace and cap the length: a 10,000-character paste is searched by its start."""
    return " ".join(query.split())[:MAX_QUERY_CHARS]


def _depth(offset: int, limit: int) -> int:
    steps = -(-(offset + limit) // CANDIDATE_DEPTH)
    return max(1, steps) * CANDIDATE_DEPTH


def visual_search_ready() -> bool:
    """Whether photo and similar-product search can answer now (an index for this model)."""
    return _index_version() is not None


def _index_version() -> str | None:
    from search.index import get_index

    try:
        return str(get_index().version)
    except (IndexNotReady, ModelNotAvailable):
        return None


def _visual_candidates(
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
    with _timed(timings, "db"):
        if snap is not None and snap.serves(filters):
            allowed = snap.allowed_image_ids(filters)
        else:
            allowed = selectors.allowed_image_ids(filters=filters)
    k = depth * IMAGES_PER_PRODUCT
    if allowed is not None:
        k = min(k, len(allowed))
    if k == 0:
        return []
    scores, ids = [], []
    with _timed(timings, "ann"):
        for vector in np.atleast_2d(vectors):
            s, i = index.search(
                np.ascontiguousarray(vector, dtype=np.float32), k, allowed_ids=allowed
            )
            scores.append(s)
            ids.append(i)
    all_scores, all_ids = np.concatenate(scores), np.concatenate(ids)
    order = np.argsort(-all_scores, kind="stable")
    with _timed(timings, "db"):
        hit_ids = [int(i) for i in np.unique(all_ids)]
        owners = snap.fresh_owners(hit_ids) if snap else selectors.image_products(hit_ids)
    return _collapse(
        all_scores[order], all_ids[order], owners, depth, exclude_product, exclude_assets
    )


def _collapse(scores, ids, owners, depth, exclude_product, exclude_assets) -> list[Candidate]:
    """One candidate per product (its best image); an image file already shown is not repeated.

    The same photo listed on several products (variants, re-listings) is a near-duplicate: only
    its best-ranked product stays, so duplicates cannot fill a page.
    """
    seen_products: set[int] = set()
    seen_assets: set[int] = set(exclude_assets)
    found: list[Candidate] = []
    for score, image_id in zip(scores.tolist(), ids.tolist(), strict=True):
        owner = owners.get(image_id)
        if owner is None:
            continue
        product_id, asset_id = owner
        if product_id == exclude_product or product_id in seen_products or asset_id in seen_assets:
            continue
        seen_products.add(product_id)
        seen_assets.add(asset_id)
        found.append(
            Candidate(product_id, image_id, score, visual_score=score, visual_rank=len(found))
        )
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
    visual_weight = VISUAL_WEIGHT if visual_weight is None else visual_weight
    keyword_weight = KEYWORD_WEIGHT if keyword_weight is None else keyword_weight
    merged: dict[int, Candidate] = {c.product_id: replace(c) for c in visual}
    for rank, (product_id, bm25) in enumerate(keyword):
        cand = merged.setdefault(product_id, Candidate(product_id))
        # FTS5's bm25() is negative, lower = better; flip it so every score reads "higher = better".
        cand.keyword_score, cand.keyword_rank = -bm25, rank
    for product_id in exact:
        merged.setdefault(product_id, Candidate(product_id)).exact = True
    for cand in merged.values():
        cand.score = (
            (visual_weight / (RRF_K + cand.visual_rank + 1) if cand.visual_rank is not None else 0)
            + (
                keyword_weight / (RRF_K + cand.keyword_rank + 1)
                if cand.keyword_rank is not None
                else 0
            )
            + (EXACT_BOOST if cand.exact else 0)
        )
    return sorted(merged.values(), key=lambda c: (-c.score, c.product_id))


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


def text_signals(
    query: str,
    *,
    filters: SearchFilters,
    depth: int,
    timings: dict[str, float] | None = None,
    floor: relevance.FloorParams | None = None,
) -> TextSignals:
    """The visual, keyword and exact lists a text search fuses, each `depth` deep at most.

    Visual hits are cut at the relevance floor (`floor`, default from settings; pass
    `FloorParams(enabled=False)` for the raw list and `above_floor` to apply other parameters).

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
        with _timed(timings, "encode"):
            vector = encode_text(query)
        # Minus-words remove candidates afterwards: fetch more so the page stays full.
        visual_depth = depth * (NEGATIVE_DEPTH_FACTOR if negatives else 1)
        visual = _visual_candidates(vector, filters=filters, depth=visual_depth, timings=timings)
        full = len(visual) >= visual_depth
        visual = above_floor(visual, floor)
        visual_full = full and len(visual) >= visual_depth
    except (IndexNotReady, ModelNotAvailable) as exc:
        logger.info("visual search unavailable, keyword results only: %s", exc)
        status = "not_ready"
    with _timed(timings, "db"):
        keyword = selectors.keyword_hits(
            query=query, filters=filters, limit=depth, exclude=negatives
        )
        if not keyword and status != "ok":
            # Without the visual side, "any of the words" is better than nothing at all.
            keyword = selectors.keyword_hits(
                query=query, filters=filters, limit=depth, any_word=True, exclude=negatives
            )
        keyword = _with_attribute_matches(keyword, query, filters, depth, negatives)
        exact = selectors.exact_match_ids(query=query, filters=filters)
    return TextSignals(visual, keyword, exact, negatives, status, visual_full)


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

    if len(keyword) >= depth:
        return keyword
    seen = {pid for pid, _ in keyword}
    extra = [
        pid
        for pid in attribute_match_ids(query=query, filters=filters, limit=depth)
        if pid not in seen
    ]
    banned = selectors.products_matching_any(negatives, extra) if negatives else set()
    return keyword + [(pid, 0.0) for pid in extra if pid not in banned][: depth - len(keyword)]


def above_floor(
    visual: list[Candidate], params: relevance.FloorParams | None = None
) -> list[Candidate]:
    """The visual candidates of one text query that clear its relevance floor, re-ranked."""
    from search.index import get_index

    params = params or relevance.FloorParams.from_settings()
    if not visual or not params.enabled:
        return visual
    scores = [c.visual_score for c in visual]
    keep = relevance.floor_mask(scores, noise=get_index().noise, params=params).tolist()
    kept = [replace(c) for c, ok in zip(visual, keep, strict=True) if ok]
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
    with _timed(timings, "db"):
        banned = selectors.products_matching_any(negatives, unchecked)
    return [c for c in candidates if c.product_id not in banned]


@dataclass
class _Ranked:
    candidates: list[Candidate]
    status: str
    total: int
    total_is_lower_bound: bool


def _text_candidates(
    query: str, filters: SearchFilters, depth: int, timings: dict[str, float]
) -> _Ranked:
    signals = text_signals(query, filters=filters, depth=depth, timings=timings)
    fused = drop_negatives(
        fuse(signals.visual, signals.keyword, signals.exact), signals.negatives, timings
    )
    # Matches of the shopper's words (or SKU) first, then the look-alikes, each by fused score.
    fused.sort(key=lambda c: c.keyword_rank is None and not c.exact)
    total = len(fused)
    if len(signals.keyword) >= depth:
        # The ranked keyword list was cut at its depth: count every keyword match exactly.
        positive, _ = selectors.split_negatives(query)
        with _timed(timings, "db"):
            counted = selectors.keyword_count(
                query=positive, filters=filters, exclude=signals.negatives
            )
        total += max(0, counted - sum(c.keyword_rank is not None for c in fused))
    return _Ranked(fused, signals.status, total, signals.visual_full)


def _hits(window: list[Candidate], timings: dict[str, float]) -> list[SearchHit]:
    """Hydrate ranked candidates into hits: four queries for any page size.

    A product whose GTIN an earlier hit of the page has is the same product at another store:
    it is left out here and listed among that hit's offers.
    """
    with _timed(timings, "db"):
        products = selectors.hydrate_products([c.product_id for c in window])
    hits = []
    gtins: set[str] = set()
    for cand in window:
        product = products.get(cand.product_id)
        if product is None or (product.gtin and product.gtin in gtins):
            continue
        gtins.add(product.gtin)
        images = product.ready_images
        image = next((i for i in images if i.pk == cand.image_id), images[0] if images else None)
        hits.append(
            SearchHit(product, image, cand.score, cand.visual_score, cand.keyword_score, cand.exact)
        )
    with _timed(timings, "db"):
        _add_variants_and_offers(hits)
    return hits


def _add_variants_and_offers(hits: list[SearchHit]) -> None:
    """Each hit's variants (the matched one: whose picture the visual search found) and its
    offers at other stores: two queries for any page size."""
    if not hits:
        return
    products = [h.product for h in hits]
    variants = selectors.variants_of([p.pk for p in products])
    offers = selectors.offers_for(products)
    for hit in hits:
        hit.variants = variants.get(hit.product.pk, [])
        hit.offers = offers.get(hit.product.pk, [])
        if hit.image is not None and hit.visual_score is not None:
            hit.variant = _shown_variant(hit.variants, hit.image.pk)


def _shown_variant(variants: list[ProductVariant], image_id: int) -> ProductVariant | None:
    """The variant a matched picture shows; when several share it (sizes of one colour), one
    in stock first, then the cheapest, then the store's order."""
    showing = [v for v in variants if v.image_id == image_id]
    return min(
        showing,
        key=lambda v: (v.availability != "in_stock", v.price is None, v.price or 0, v.position),
        default=None,
    )


def _page(
    mode: str,
    candidates: list[Candidate],
    *,
    offset: int,
    limit: int,
    filters: SearchFilters,
    timings: dict[str, float],
    facets: bool = True,
    sort: str = RELEVANCE,
    taken_gtins: frozenset[str] = frozenset(),
    **extra,
) -> SearchPage:
    """Cut one page from ranked candidates, hydrate it, count facets over all candidates."""
    if sort != RELEVANCE and candidates:
        with _timed(timings, "db"):
            candidates = _sorted(candidates, sort)
    if candidates:
        with _timed(timings, "db"):
            before = len(candidates)
            candidates = _one_per_gtin(candidates, taken_gtins)
        if extra.get("total") is not None:  # listings merged into one result are one result
            extra["total"] -= before - len(candidates)
    hits = _hits(candidates[offset : offset + limit], timings)
    facet_rows = {}
    if facets and candidates:
        with _timed(timings, "db"):
            ids = [c.product_id for c in candidates]
            facet_rows = _facet_counts(ids, filters)
            extra["price_range"] = selectors.price_range(product_ids=ids, filters=filters)
    return SearchPage(
        mode=mode,
        hits=hits,
        offset=offset,
        limit=limit,
        has_more=len(candidates) > offset + limit,
        facets=facet_rows,
        timings=timings,
        sort=sort,
        **extra,
    )


def _facet_counts(product_ids: list[int], filters: SearchFilters) -> dict[str, list[tuple]]:
    """Facets of a query's candidates: bincounts over the index's snapshot when it holds them
    all and the filters are structural (candidates come from this moment's hits, so they are
    active now), else the database."""
    from search.index import get_index

    try:
        snap = snapshot.for_index(get_index())
    except (IndexNotReady, ModelNotAvailable):
        snap = None
    if snap is not None and snap.serves(filters) and snap.holds(product_ids):
        return snap.facet_counts(product_ids=product_ids, filters=filters, active_now=True)
    return selectors.facet_counts(product_ids=product_ids, filters=filters)


def _one_per_gtin(
    candidates: list[Candidate], taken: frozenset[str] = frozenset()
) -> list[Candidate]:
    """One candidate per GTIN, in one query: the same product at several stores is shown once,
    where its best-placed listing was, as its best offer (in stock first, then the cheapest;
    an exact match stays itself); the others are that result's offers, and pages stay full.
    GTINs in `taken` (the product whose look-alikes these are) are left out: its page lists
    them as offers."""
    offers = selectors.product_gtins([c.product_id for c in candidates])
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


def _sorted(candidates: list[Candidate], sort: str) -> list[Candidate]:
    """Candidates in the shopper's order; ties (and products without a price) keep relevance."""
    keys = selectors.sort_keys([c.product_id for c in candidates])
    rank = {c.product_id: i for i, c in enumerate(candidates)}

    direction = 1 if sort == "price_asc" else -1

    def key(c: Candidate):
        price, seen = keys.get(c.product_id, (None, None))
        if sort == "newest":
            return (seen is None, -seen.timestamp() if seen else 0, rank[c.product_id])
        return (price is None, direction * price if price is not None else 0, rank[c.product_id])

    return sorted(candidates, key=key)


def search_products(
    *,
    query: str,
    filters: SearchFilters | None = None,
    offset: int = 0,
    limit: int = 24,
    sort: str = RELEVANCE,
    spell: bool = True,
) -> SearchPage:
    """Text search (or browsing by filters when the query is empty), one page of it.

    Only results that match the words or clear the relevance floor are listed and counted. A
    query with fewer than SPELLING_MAX_RESULTS results gets spelling help from the catalogue's
    words (`spell`): a suggestion, or, when it found nothing at all and the correction finds
    something, the correction's results (`corrected_from` says what the shopper typed).
    """
    if sort not in _SORTS:
        raise ValueError(f"unknown sort {sort!r}")
    filters = filters or SearchFilters()
    query = normalise_query(query)
    timings: dict[str, float] = {}
    if not query:
        if filters.is_empty:
            return SearchPage(mode="empty", offset=offset, limit=limit, visual_status="unused")
        return _browse(filters=filters, offset=offset, limit=limit, timings=timings, sort=sort)
    page = _text_page(query, filters, offset=offset, limit=limit, sort=sort, timings=timings)
    if not spell or (page.total or 0) >= SPELLING_MAX_RESULTS or page.offset:
        return page
    with _timed(timings, "spelling"):
        suggestion = spelling.suggest(query)
    if not suggestion or suggestion.casefold() == query.casefold():
        return page
    if page.total == 0:
        corrected = _text_page(
            suggestion, filters, offset=offset, limit=limit, sort=sort, timings=timings
        )
        if corrected.total:
            corrected.corrected_from = query
            return corrected
    page.suggestion = suggestion
    return page


def _text_page(
    query: str,
    filters: SearchFilters,
    *,
    offset: int,
    limit: int,
    sort: str,
    timings: dict[str, float],
) -> SearchPage:
    # A re-sorted list must not change as the shopper pages, so it is cut from a fixed depth;
    # by relevance, a deeper list only extends the one before it.
    depth = _depth(offset, limit) if sort == RELEVANCE else CANDIDATE_DEPTH
    ranked, from_cache = _ranked(query, filters, depth, timings)
    notice = (
        "Searching by words only for now: matching by looks is being set up."
        if ranked.status == "not_ready"
        else ""
    )
    page = _page(
        "text",
        ranked.candidates,
        offset=offset,
        limit=limit,
        filters=filters,
        timings=timings,
        query=query,
        visual_status=ranked.status,
        notice=notice,
        cached=from_cache,
        sort=sort,
        total=ranked.total,
        total_is_lower_bound=ranked.total_is_lower_bound,
    )
    if sort == RELEVANCE:
        _mark_similar_section(page, ranked.candidates)
    _disjunctive_facets(page, filters, lambda others: _ranked(query, others, depth, timings))
    return page


def _ranked(
    query: str, filters: SearchFilters, depth: int, timings: dict[str, float]
) -> tuple[_Ranked, bool]:
    """A text query's ranked results (cached per process), and whether they came from the cache."""
    floor = relevance.FloorParams.from_settings()
    key = ("text", query, filters, depth, _index_version(), floor)
    ranked = _result_cache.get(key)
    if ranked is not None:
        return ranked, True
    ranked = _text_candidates(query, filters, depth, timings)
    _result_cache.put(key, ranked)
    return ranked, False


# A facet's filter field on SearchFilters: ticking a second value widens (OR) within the facet.
_DISJUNCTIVE = {"store": "stores", "brand": "brands", "category": "categories"}


def _disjunctive_facets(page: SearchPage, filters: SearchFilters, search) -> None:
    """Each facet with a chosen value counts its other values as if none were chosen (with the
    other facets' filters still applied), so a shopper can tick a second category: the counts
    say what ticking it would add. One more (cached) search and facet query per chosen facet."""
    for name, field_name in _DISJUNCTIVE.items():
        if not getattr(filters, field_name):
            continue
        others = replace(filters, **{field_name: ()})
        if search is None:  # browsing: every product that passes the other filters
            page.facets[name] = selectors.facet_counts(product_ids=[], filters=others)[name]
            continue
        ranked, _ = search(others)
        ids = [c.product_id for c in ranked.candidates]
        if ids:
            page.facets[name] = _facet_counts(ids, others)[name]


def _mark_similar_section(page: SearchPage, candidates: list[Candidate]) -> None:
    """Flag the hit where the visual-only matches ("Similar looking items") start, if on this page."""
    first = next((c for c in candidates if c.keyword_rank is None and not c.exact), None)
    for hit in page.hits if first is not None else []:
        if hit.product.pk == first.product_id:
            hit.starts_similar = True


def _browse(
    *, filters: SearchFilters, offset: int, limit: int, timings, sort: str = RELEVANCE
) -> SearchPage:
    """No query but some filters: matching products (newest first unless sorted by price), with
    facets over all of them."""
    with _timed(timings, "db"):
        ids = selectors.browse_product_ids(
            filters=filters, limit=limit + 1, offset=offset, sort=sort
        )
    hits = _hits([Candidate(pid) for pid in ids[:limit]], timings)
    with _timed(timings, "db"):
        facet_rows = selectors.facet_counts(product_ids=[], filters=filters)
        total = len(ids) + offset if len(ids) <= limit else filters.queryset().count()
        price_range = selectors.price_range(product_ids=[], filters=filters)
    page = SearchPage(
        mode="browse",
        total=total,
        price_range=price_range,
        hits=hits,
        offset=offset,
        limit=limit,
        has_more=len(ids) > limit,
        facets=facet_rows,
        timings=timings,
        visual_status="unused",
        sort=sort,
    )
    with _timed(timings, "db"):
        _disjunctive_facets(page, filters, None)
    return page


def search_by_image(
    *,
    image: Image.Image,
    filters: SearchFilters | None = None,
    limit: int = 24,
    keep: bool = False,
) -> SearchPage:
    """Products that look like an uploaded photo. Raises IndexNotReady/ModelNotAvailable.

    `keep`: its vector (never the photo) is kept a while under `page.photo`, an opaque id that
    `search_by_photo_id` pages through (search.photo_queries).
    """
    from search.encoder import get_encoder
    from search.index import get_index

    filters = filters or SearchFilters()
    timings: dict[str, float] = {}
    get_index()  # no index: fail fast, before loading the model for nothing
    with _timed(timings, "encode"):
        vector = get_encoder().encode_images([image])[0]
    page = _vector_page(vector, filters, offset=0, limit=limit, timings=timings)
    if keep:
        page.photo = photo_queries.remember(vector)
    return page


def search_by_photo_id(
    *, photo: str, filters: SearchFilters | None = None, offset: int = 0, limit: int = 24
) -> SearchPage | None:
    """One page of an earlier photo search, by its id; None when the id is unknown or expired.
    Raises IndexNotReady when no index can serve it."""
    vector = photo_queries.recall(photo)
    if vector is None:
        return None
    page = _vector_page(vector, filters or SearchFilters(), offset=offset, limit=limit, timings={})
    page.photo = photo
    return page


def _vector_page(vector, filters: SearchFilters, *, offset: int, limit: int, timings) -> SearchPage:
    candidates = _visual_candidates(
        vector, filters=filters, depth=_depth(offset, limit), timings=timings
    )
    return _page("image", candidates, offset=offset, limit=limit, filters=filters, timings=timings)


def find_similar_products(
    *,
    product: Product,
    filters: SearchFilters | None = None,
    offset: int = 0,
    limit: int = 12,
    fallback_to_keywords: bool = False,
) -> SearchPage:
    """Products that look like `product`, from its own stored image vectors (no CLIP run).

    Raises IndexNotReady when no index can serve it, unless `fallback_to_keywords`, in which case
    products sharing words with its title are returned and `visual_status` says "not_ready".
    """
    filters = filters or SearchFilters()
    timings: dict[str, float] = {}
    try:
        with _timed(timings, "db"):
            vectors = selectors.product_vectors(
                product_id=product.pk, model_name=settings.MEEPO_CLIP_MODEL
            )
            own_assets = frozenset(i.asset_id for i in getattr(product, "ready_images", []))
        if not len(vectors):
            raise IndexNotReady(f"product {product.pk} has no image vectors for this model yet")
        candidates = _visual_candidates(
            vectors,
            filters=filters,
            depth=_depth(offset, limit),
            timings=timings,
            exclude_product=product.pk,
            exclude_assets=own_assets,
        )
        status, notice = "ok", ""
    except IndexNotReady:
        if not fallback_to_keywords:
            raise
        with _timed(timings, "db"):
            keyword = selectors.keyword_hits(
                query=product.title, filters=filters, limit=_depth(offset, limit) + 1, any_word=True
            )
        candidates = fuse([], [k for k in keyword if k[0] != product.pk], [])
        status = "not_ready"
        notice = "Visual similarity is not ready yet; these products share words with this one."
    return _page(
        "similar",
        candidates,
        offset=offset,
        limit=limit,
        filters=filters,
        timings=timings,
        facets=False,
        visual_status=status,
        notice=notice,
        taken_gtins=frozenset({product.gtin} - {""}),
    )


def clear_caches() -> None:
    """Forget cached result lists and filter id sets (tests; a worker after a catalogue change)."""
    _result_cache.clear()
    snapshot._loaded.clear()
    selectors._allowed_ids_cache.clear()
    selectors._examples_cache.clear()
    spelling.clear_cache()
