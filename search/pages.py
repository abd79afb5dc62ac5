"""One page of results: ranked candidates cut into a page, hydrated into `SearchHit`s in a
constant number of queries, with facets over every candidate (from the index's columnar snapshot
when it can answer, else the database) and the disjunctive counts of chosen facets.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from catalog.models import Product, ProductImage, ProductVariant
from search import live_rows, selectors, snapshot
from search.exceptions import IndexNotReady, ModelNotAvailable
from search.facets import Facets, candidate_tallies, price_range_of
from search.filters import RELEVANCE, SearchFilters
from search.ranking import Candidate, one_per_gtin, sort_candidates
from search.timing import timed


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
    facets: Facets = field(default_factory=dict)
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


def hydrate_hits(window: list[Candidate], timings: dict[str, float]) -> list[SearchHit]:
    """Hydrate ranked candidates into hits: four queries for any page size.

    A product whose GTIN an earlier hit of the page has is the same product at another store:
    it is left out here and listed among that hit's offers.
    """
    with timed(timings, "db"):
        products = selectors.hydrate_products([c.product_id for c in window], lean=True)
    hits = []
    gtins: set[str] = set()
    for cand in window:
        product = products.get(cand.product_id)
        if product is None or (product.gtin and product.gtin in gtins):
            continue
        gtins.add(product.gtin)
        images = product.ready_images
        # The matched picture, else the first one (a loop: no generator per hit).
        image = images[0] if images else None
        for candidate_image in images:
            if candidate_image.pk == cand.image_id:
                image = candidate_image
                break
        hits.append(
            SearchHit(product, image, cand.score, cand.visual_score, cand.keyword_score, cand.exact)
        )
    with timed(timings, "db"):
        _add_variants_and_offers(hits)
    return hits


def _add_variants_and_offers(hits: list[SearchHit]) -> None:
    """Each hit's variants (the matched one: whose picture the visual search found) and its
    offers at other stores: two queries for any page size."""
    if not hits:
        return
    products = [h.product for h in hits]
    variants = selectors.variants_of([p.pk for p in products])
    offers = selectors.offers_for(products, lean=True)
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


def build_page(
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
    """Cut one page from ranked candidates, hydrate it, count facets over all candidates.

    The candidates' rows (`selectors.candidate_rows`: GTIN, stock, price, currency, first seen)
    are read once and serve the sort, one result per GTIN and the price range."""
    rows: dict[int, selectors.CandidateRow] = {}
    if candidates:
        with timed(timings, "db"):
            before = len(candidates)
            candidates, rows = merged_candidates(candidates, sort, taken_gtins)
        if extra.get("total") is not None:  # listings merged into one result are one result
            extra["total"] -= before - len(candidates)
    hits = hydrate_hits(candidates[offset : offset + limit], timings)
    facet_rows = {}
    if facets and candidates:
        with timed(timings, "db"):
            ids = [c.product_id for c in candidates]
            facet_rows = facet_counts(ids, filters)
            extra["price_range"] = price_range_of(rows, ids, filters)
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


def merged_candidates(
    candidates: list[Candidate], sort: str = RELEVANCE, taken_gtins: frozenset[str] = frozenset()
) -> tuple[list[Candidate], dict[int, selectors.CandidateRow]]:
    """(the results a page lists from ranked candidates: in the shopper's order, one per GTIN;
    their `selectors.candidate_rows`), in one query. Facets count these results, so a product
    sold at several stores counts once, as the listing shown."""
    if not candidates:
        return candidates, {}
    # Only "newest" reads the first-seen date (the costliest column, and the snapshot lacks it).
    rows = selectors.candidate_rows([c.product_id for c in candidates], first_seen=sort == "newest")
    if sort != RELEVANCE:
        candidates = sort_candidates(candidates, sort, rows)
    return one_per_gtin(candidates, taken_gtins, rows), rows


def facet_counts(product_ids: list[int], filters: SearchFilters) -> Facets:
    """Facets of a query's candidates: bincounts over the index's snapshot when it holds them
    all and the filters are structural (candidates come from this moment's hits, so they are
    active now), else the database."""
    from search.index import get_index

    try:
        snap = snapshot.for_index(get_index())
    except (IndexNotReady, ModelNotAvailable):
        snap = None
    if snap is not None and live_rows.fast():
        found = _facets_beside_changes(snap, product_ids, filters)
        if found is not None:
            return found
    if snap is not None and snap.serves(filters) and snap.holds(product_ids):
        return snap.facet_counts(product_ids=product_ids, filters=filters, active_now=True)
    return selectors.facet_counts(product_ids=product_ids, filters=filters)


def _facets_beside_changes(snap, product_ids: list[int], filters: SearchFilters) -> Facets | None:
    """Facets from the snapshot for the candidates unchanged since its build (their columns,
    price and stock included, are the catalogue's: any filter), plus the database's counts of
    the changed ones (`facets.candidate_tallies`, one query, none when none changed); None when
    the snapshot cannot say (too many changes, a candidate it lacks, a new store)."""
    changed = live_rows.changed_ids(snap)
    if changed is None:
        return None
    ids = np.asarray(product_ids, dtype=np.int64)
    moved = np.isin(ids, changed) if len(changed) else np.zeros(len(ids), bool)
    kept = ids[~moved].tolist()
    if not snap.holds(kept):
        return None
    extra = candidate_tallies(ids[moved].tolist(), filters) if moved.any() else None
    if extra is not None and any(str(pk) not in snap.meta["stores"] for pk in extra["store"]):
        return None
    return snap.facet_counts(product_ids=kept, filters=filters, active_now=True, extra=extra)


# A facet's filter field on SearchFilters: ticking a second value widens (OR) within the facet.
_DISJUNCTIVE = {"store": "stores", "brand": "brands", "category": "categories"}


def facet_removed(filters: SearchFilters) -> SearchFilters | None:
    """`filters` without its first chosen store, brand or category (the first search
    `disjunctive_facets` asks for), None when none is chosen."""
    for field_name in _DISJUNCTIVE.values():
        if getattr(filters, field_name):
            return replace(filters, **{field_name: ()})
    return None


def disjunctive_facets(
    page: SearchPage, filters: SearchFilters, search, sort: str = RELEVANCE
) -> None:
    """Each facet with a chosen value counts its other values as if none were chosen (with the
    other facets' filters still applied), so a shopper can tick a second category: the counts
    say what ticking it would add, and are those the facet-removed page shows (its results
    merged one per GTIN, in the same `sort`). One more (cached) search, a rows query and a
    facet query per chosen facet."""
    for name, field_name in _DISJUNCTIVE.items():
        if not getattr(filters, field_name):
            continue
        others = replace(filters, **{field_name: ()})
        if search is None:  # browsing: every product that passes the other filters
            page.facets[name] = selectors.facet_counts(product_ids=[], filters=others, only=name)[
                name
            ]
            continue
        ranked, _ = search(others)
        with timed(page.timings, "db"):
            shown, _ = merged_candidates(ranked.candidates, sort)
        ids = [c.product_id for c in shown]
        if ids:
            page.facets[name] = facet_counts(ids, others)[name]


def mark_similar_section(page: SearchPage, candidates: list[Candidate]) -> None:
    """Flag the hit where the visual-only matches ("Similar looking items") start, if on this page."""
    first = next((c for c in candidates if c.keyword_rank is None and not c.exact), None)
    for hit in page.hits if first is not None else []:
        if hit.product.pk == first.product_id:
            hit.starts_similar = True
