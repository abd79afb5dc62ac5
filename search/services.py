"""The search core under every page and API: text, photo and similar-product search.

Text: query -> CLIP text vector (cached per process) -> ANN over image vectors (filters pushed into
the index as allowed ids) -> one result per product (its best image) -> reciprocal-rank fusion with
FTS5/BM25 keyword hits (same filters in SQL) and exact title/SKU matches -> hydrated in a constant
number of queries. Every hit says which signals matched and with what score.

When the model or index is missing, text search degrades to keyword results and says so
(`SearchPage.visual_status`); photo and similar searches, which need the index, raise
`IndexNotReady` (or `ModelNotAvailable`) for the caller to answer 503.

This module holds the entry points and paging; the parts live in search.ranking (candidates,
fusion), search.signals (the visual/keyword/exact lists and the ranked-results cache) and
search.pages (page assembly, hydration, facets). Their public names are re-exported here.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from django.conf import settings

from search import catalogue_summary, live_rows, photo_queries, selectors, snapshot, spelling
from search.browse import browse
from search.browse import clear_cache as clear_browse_cache
from search.exceptions import IndexNotReady
from search.filters import RELEVANCE, SORT_CHOICES, SORTS, SearchFilters
from search.pages import (
    SearchHit,
    SearchPage,
    build_page,
    disjunctive_facets,
    facet_removed,
    mark_similar_section,
)
from search.ranking import (
    EXACT_BOOST,
    KEYWORD_WEIGHT,
    RRF_K,
    VISUAL_WEIGHT,
    Candidate,
    above_floor,
    drop_negatives,
    fuse,
)
from search.signals import (
    IMAGES_PER_PRODUCT,
    NEGATIVE_DEPTH_FACTOR,
    TextSignals,
    index_version,
    ranked,
    text_candidates,
    text_signals,
    visual_candidates,
)
from search.timing import timed

if TYPE_CHECKING:
    from PIL import Image

    from catalog.models import Product

__all__ = [
    "CANDIDATE_DEPTH",
    "EXACT_BOOST",
    "IMAGES_PER_PRODUCT",
    "KEYWORD_WEIGHT",
    "NEGATIVE_DEPTH_FACTOR",
    "RELEVANCE",
    "RRF_K",
    "SORT_CHOICES",
    "VISUAL_WEIGHT",
    "Candidate",
    "SearchHit",
    "SearchPage",
    "TextSignals",
    "above_floor",
    "clear_caches",
    "drop_negatives",
    "find_similar_products",
    "fuse",
    "index_version",
    "normalise_query",
    "search_by_image",
    "search_by_photo_id",
    "search_products",
    "text_signals",
    "visual_search_ready",
]

logger = logging.getLogger(__name__)

# Candidates ranked per list. Pages are cut from a list this deep, so page 2 follows page 1
# without gaps or repeats; going past it deepens the list in the same steps.
CANDIDATE_DEPTH = 120
MAX_QUERY_CHARS = 200
# Spelling help is looked for when a query finds fewer results than this; with none at all, the
# corrected query is searched instead ("Showing results for teapot; search instead for teapto").
SPELLING_MAX_RESULTS = 3
# A filtered page's facet-removed search keeps up to this many keyword matches (lean data
# path): when that is all of them, the filtered search's keyword list is cut from them
# (checked against the snapshot's columns) instead of searched again.
WITHIN_MAX = 500

# Older private names, kept for the benchmarks that call them.
_index_version = index_version
_text_candidates = text_candidates


def normalise_query(query: str) -> str:
    """Collapse whitespace and cap the length: a 10,000-character paste is searched by its start."""
    return " ".join(query.split())[:MAX_QUERY_CHARS]


def _depth(offset: int, limit: int) -> int:
    steps = -(-(offset + limit) // CANDIDATE_DEPTH)
    return max(1, steps) * CANDIDATE_DEPTH


def _one_moment(fn):
    """Run a search entry point in one `live_rows.request_scope`: its searches, owners,
    candidate rows and facets read the catalogue's changes since the build once."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with live_rows.request_scope():
            return fn(*args, **kwargs)

    return wrapper


def visual_search_ready() -> bool:
    """Whether photo and similar-product search can answer now (an index for this model)."""
    return index_version() is not None


@_one_moment
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
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}")
    filters = filters or SearchFilters()
    query = normalise_query(query)
    timings: dict[str, float] = {}
    if not query:
        if filters.is_empty:
            return SearchPage(mode="empty", offset=offset, limit=limit, visual_status="unused")
        return browse(filters=filters, offset=offset, limit=limit, timings=timings, sort=sort)
    page = _text_page(query, filters, offset=offset, limit=limit, sort=sort, timings=timings)
    if not spell or (page.total or 0) >= SPELLING_MAX_RESULTS or page.offset:
        return page
    with timed(timings, "spelling"):
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
    # A chosen store, brand or category: the search without it is ranked anyway (for that
    # facet's disjunctive counts), so first: when it was ranked just now (not a cached list,
    # which may predate a catalogue change), its keyword list can spare this one's search.
    wider, within = facet_removed(filters), None
    if wider is not None:
        within, wider_cached = ranked(query, wider, depth, timings, collect=WITHIN_MAX)
        within = None if wider_cached else within
    found, from_cache = ranked(query, filters, depth, timings, within)
    notice = (
        "Searching by words only for now: matching by looks is being set up."
        if found.status == "not_ready"
        else ""
    )
    page = build_page(
        "text",
        found.candidates,
        offset=offset,
        limit=limit,
        filters=filters,
        timings=timings,
        query=query,
        visual_status=found.status,
        notice=notice,
        cached=from_cache,
        sort=sort,
        total=found.total,
        total_is_lower_bound=found.total_is_lower_bound,
    )
    if sort == RELEVANCE:
        mark_similar_section(page, found.candidates)
    disjunctive_facets(page, filters, lambda others: ranked(query, others, depth, timings), sort)
    return page


@_one_moment
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
    with timed(timings, "encode"):
        vector = get_encoder().encode_images([image])[0]
    page = _vector_page(vector, filters, offset=0, limit=limit, timings=timings)
    if keep:
        page.photo = photo_queries.remember(vector)
    return page


@_one_moment
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
    candidates = visual_candidates(
        vector, filters=filters, depth=_depth(offset, limit), timings=timings
    )
    return build_page(
        "image", candidates, offset=offset, limit=limit, filters=filters, timings=timings
    )


@_one_moment
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
    depth = _depth(offset, limit)
    try:
        candidates = _look_alikes(product, filters, depth, timings)
        status, notice = "ok", ""
    except IndexNotReady:
        if not fallback_to_keywords:
            raise
        with timed(timings, "db"):
            keyword = selectors.keyword_hits(
                query=product.title, filters=filters, limit=depth + 1, any_word=True
            )
        candidates = fuse([], [k for k in keyword if k[0] != product.pk], [])
        status = "not_ready"
        notice = "Visual similarity is not ready yet; these products share words with this one."
    return build_page(
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


def _look_alikes(
    product: Product, filters: SearchFilters, depth: int, timings: dict[str, float]
) -> list[Candidate]:
    """Visual candidates for a product's own vectors, itself and its own pictures left out.
    Raises IndexNotReady when it has no vectors for this model yet (or there is no index)."""
    with timed(timings, "db"):
        vectors = selectors.product_vectors(
            product_id=product.pk, model_name=settings.MEEPO_CLIP_MODEL
        )
        own_assets = frozenset(i.asset_id for i in getattr(product, "ready_images", []))
    if not len(vectors):
        raise IndexNotReady(f"product {product.pk} has no image vectors for this model yet")
    return visual_candidates(
        vectors,
        filters=filters,
        depth=depth,
        timings=timings,
        exclude_product=product.pk,
        exclude_assets=own_assets,
    )


def clear_caches() -> None:
    """Forget cached result lists and filter id sets (tests; a worker after a catalogue change)."""
    from search import signals

    signals.clear_cache()
    snapshot.forget_loaded()
    catalogue_summary.forget_loaded()
    clear_browse_cache()
    selectors.clear_caches()
    spelling.clear_cache()
