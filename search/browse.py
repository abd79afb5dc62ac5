"""A page of products without a query (filters only): newest first unless sorted by price, with
facets, total and price range over every product passing the filters.

Those aggregates group every matching product (at 1 M products a broad category is ≈ 0.8 s of
SQLite CPU); they do not depend on the page, the sort or the fragment asked for, so each worker
keeps them per filter combination for BROWSE_CACHE_SECONDS: the next page, another sort or the
"more" fragment of the same browse costs the page's own rows only. The listed products are
always read live; only counts may lag by that long (the page cache already serves whole pages
60 s old). The unfiltered catalogue's counts come from the index version
(search.catalogue_summary).
"""

from __future__ import annotations

from search import selectors
from search.caching import TTLCache
from search.filters import RELEVANCE, SearchFilters
from search.pages import SearchPage, disjunctive_facets, hydrate_hits
from search.ranking import Candidate
from search.timing import timed

BROWSE_CACHE_SECONDS = 60.0
# (facets after the disjunctive counts, price range, total or None) per filter combination.
_aggregates = TTLCache(256, BROWSE_CACHE_SECONDS)


def browse(
    *, filters: SearchFilters, offset: int, limit: int, timings, sort: str = RELEVANCE
) -> SearchPage:
    with timed(timings, "db"):
        ids = selectors.browse_product_ids(
            filters=filters, limit=limit + 1, offset=offset, sort=sort
        )
    hits = hydrate_hits([Candidate(pid) for pid in ids[:limit]], timings)
    cached = _aggregates.get(filters)
    with timed(timings, "db"):
        if cached is None:
            facet_rows = selectors.facet_counts(product_ids=[], filters=filters)
            price_range = selectors.price_range(product_ids=[], filters=filters)
            counted = None
        else:
            facet_rows, price_range, counted = cached
            facet_rows = {name: list(rows) for name, rows in facet_rows.items()}
        if len(ids) <= limit:
            total = len(ids) + offset
        else:
            total = counted if counted is not None else filters.queryset().count()
            counted = total
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
    if cached is None:
        with timed(timings, "db"):
            disjunctive_facets(page, filters, None)
    if cached is None or cached[2] != counted:
        facets = {name: list(rows) for name, rows in page.facets.items()}
        _aggregates.put(filters, (facets, price_range, counted))
    return page


def clear_cache() -> None:
    _aggregates.clear()
