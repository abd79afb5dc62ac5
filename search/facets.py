"""Facet counts and the price range of a search's results, from the database.

One facet row type (`FacetRow`) for every producer (this module, the columnar snapshot in
search.snapshot) and every reader (the results page, the JSON API, the home page's browse
links). Re-exported by `search.selectors`.
"""

from __future__ import annotations

import threading
from collections import Counter
from operator import itemgetter
from typing import NamedTuple

from django.db.models import Count, Max, Min

from catalog.models import Store
from search import catalogue_summary
from search.attributes import ATTRIBUTES, display_label
from search.caching import TTLCache
from search.filters import SearchFilters

FACET_VALUES = 20  # values listed per facet, most frequent first
# Facet name -> the Product lookup counted; attributes live in catalog.ProductAttributes.
FACET_COLUMNS = {"brand": "brand", "category": "category"} | {
    name: f"attributes__{name}" for name in ATTRIBUTES
}


class FacetRow(NamedTuple):
    """One value of a facet: what a filter sends (`value`: a store slug, a brand...), what a
    shopper reads (`label`: a store's name, an attribute's display label) and how many results
    have it. A named tuple: immutable, cheap, and equal to the (value, label, count) it was."""

    value: str
    label: str
    count: int


Facets = dict[str, list[FacetRow]]


def facet_label(name: str, value: str) -> str:
    """What a shopper reads for a facet value: attribute labels are displayed, others as is."""
    return display_label(name, value) if name in ATTRIBUTES else value


def top_rows(name: str, counted: Counter | dict) -> list[FacetRow]:
    """A facet's FACET_VALUES most frequent values (ties by value), labelled."""
    # By value, then by count descending: the sort is stable, so ties stay by value (C-level
    # keys instead of a tuple made per value).
    top = sorted(sorted(counted.items()), key=itemgetter(1), reverse=True)[:FACET_VALUES]
    if name not in ATTRIBUTES:  # labelled as they are
        return [FacetRow(value, value, n) for value, n in top]
    return [FacetRow(value, facet_label(name, value), n) for value, n in top]


def store_rows(counts: dict[int, int]) -> list[FacetRow]:
    """{store id: count} as facet rows (slug, name, count), most frequent first: one query."""
    rows = Store.objects.filter(pk__in=counts).values_list("pk", "slug", "name")
    return sorted(
        (FacetRow(slug, name, counts[pk]) for pk, slug, name in rows),
        key=lambda r: (-r.count, r.label),
    )


def facet_counts(
    *, product_ids: list[int], filters: SearchFilters, only: str | None = None
) -> Facets:
    """Counts per store, brand, category and zero-shot attribute among a query's candidates.

    With no query (`product_ids` empty and browsing), the counts cover every product that passes
    the filters. Two queries for a query's candidates (a few hundred rows, counted here: cheaper
    than GROUP BYs), one per facet when browsing (grouped in SQL: that can be the whole catalogue;
    `only` names the one facet a caller needs). With no filter either, the served index
    version's counts (search.catalogue_summary): no request groups the whole catalogue.
    """
    if product_ids:
        return _candidate_facets(product_ids, filters)
    if filters.is_empty:
        summary = catalogue_summary.served()
        if summary is not None:
            return {name: list(rows) for name, rows in summary["facets"].items()}
    return catalogue_facets_from_db(filters, only=only)


def candidate_tallies(product_ids: list[int], filters: SearchFilters) -> dict[str, Counter]:
    """{"store": {store id: n}, facet: {value: n}} over those of `product_ids` passing
    `filters` now: one query (the counts `facet_counts` lists the top of)."""
    qs = filters.queryset().filter(pk__in=product_ids)
    rows = list(qs.values_list("store_id", *FACET_COLUMNS.values()))
    tallies = {"store": Counter(row[0] for row in rows)}
    for i, name in enumerate(FACET_COLUMNS, start=1):
        tallies[name] = Counter(row[i] for row in rows if row[i])
    return tallies


def _candidate_facets(product_ids: list[int], filters: SearchFilters) -> Facets:
    tallies = candidate_tallies(product_ids, filters)
    facets = {"store": store_rows(tallies.pop("store"))}
    facets.update((name, top_rows(name, counted)) for name, counted in tallies.items())
    return facets


def catalogue_facets_from_db(filters: SearchFilters, only: str | None = None) -> Facets:
    """Every product passing `filters`, grouped per facet in SQL (all facets, or `only`)."""
    qs = filters.queryset()
    facets: Facets = {}
    if only in (None, "store"):
        stores = qs.values_list("store_id").annotate(n=Count("id")).order_by()
        facets["store"] = store_rows(dict(stores.values_list("store_id", "n")))
    for name, lookup in FACET_COLUMNS.items():
        if only not in (None, name):
            continue
        rows = (
            qs.filter(**{f"{lookup}__gt": ""})
            .values_list(lookup)
            .annotate(n=Count("id"))
            .order_by("-n", lookup)
            .values_list(lookup, "n")[:FACET_VALUES]
        )
        facets[name] = [FacetRow(value, facet_label(name, value), n) for value, n in rows]
    return facets


def price_range(*, product_ids: list[int], filters: SearchFilters) -> tuple | None:
    """(lowest, highest, currency) of these products' prices (or of every product passing
    `filters` when there are none), in their most common currency; None without prices. One query.
    """
    qs = filters.queryset().exclude(price=None)
    if product_ids:
        qs = qs.filter(pk__in=product_ids)
    row = (
        qs.values("currency")
        .annotate(n=Count("id"), low=Min("price"), high=Max("price"))
        .order_by("-n", "currency")
        .values_list("low", "high", "currency")
        .first()
    )
    return tuple(row) if row else None


def price_range_of(rows: dict, product_ids: list[int], filters: SearchFilters) -> tuple | None:
    """`price_range` of a query's candidates from their `selectors.candidate_rows`, without a
    query: the same (lowest, highest, currency) in the most common currency (ties: the first
    currency by name). The candidates already passed the structural filters where they were
    found (keyword SQL, the index's allowed ids); activity, price bounds and stock are checked
    again here against the rows, which are read after them."""
    found: dict[str, list] = {}
    for pk in product_ids:
        row = rows.get(pk)
        if row is None or not row.is_active or row.price is None:
            continue
        if filters.min_price is not None and row.price < filters.min_price:
            continue
        if filters.max_price is not None and row.price > filters.max_price:
            continue
        if filters.in_stock and not row.in_stock:
            continue
        seen = found.setdefault(row.currency, [0, row.price, row.price])
        seen[0] += 1
        seen[1], seen[2] = min(seen[1], row.price), max(seen[2], row.price)
    if not found:
        return None
    currency, (_, low, high) = min(found.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return (low, high, currency)


# The home page's examples and browse links (re-exported by search.selectors).
EXAMPLES_TTL_SECONDS = 600.0
EXAMPLES = 6  # example queries shown
_examples_cache = TTLCache(4, EXAMPLES_TTL_SECONDS)
_counting: set[tuple] = set()  # keys a thread is counting now (`_counted_once`)
_counting_lock = threading.Lock()


def example_queries(limit: int = EXAMPLES) -> list[str]:
    """Searches the catalogue can answer, for the home page and empty results: its most common
    categories and brands (lower-cased), as counted for the served index version
    (search.catalogue_summary), else from the database and cached for a while; none for an
    empty catalogue."""
    summary = catalogue_summary.served() if limit == EXAMPLES else None
    if summary is not None:
        return list(summary["examples"])
    cached = _examples_cache.get(("examples", limit))
    if cached is not None:
        return cached
    return _counted_once(("examples", limit), lambda: examples_from_db(limit), [])


def _counted_once(key: tuple, count, meanwhile):
    """`count()`, cached under `key`; while another thread of this process is counting it,
    `meanwhile` at once. These counts group the whole catalogue (seconds at 1 M products for
    a version written before search.catalogue_summary): requests that would all have run the
    same GROUP BYs at once went past 10 s; the examples and browse links are a page's
    decoration, so the others show none until the first is done."""
    with _counting_lock:
        if key in _counting:
            return meanwhile
        _counting.add(key)
    try:
        value = count()
        _examples_cache.put(key, value)
        return value
    finally:
        with _counting_lock:
            _counting.discard(key)


def examples_from_db(limit: int = EXAMPLES) -> list[str]:
    """`example_queries` counted in SQL (two GROUP BYs over the active products)."""
    filters = SearchFilters()
    by_column = catalogue_facets_from_db(filters, only="category")
    by_column |= catalogue_facets_from_db(filters, only="brand")
    return examples_from(by_column, limit)


def examples_from(facets: Facets, limit: int = EXAMPLES) -> list[str]:
    """Example queries from whole-catalogue facet rows (most common first, at least `limit`
    each): half the top categories, then the top brands, then more categories; lower-cased."""
    by_column = {
        name: [row.value.lower() for row in facets.get(name, [])[:limit]]
        for name in ("category", "brand")
    }
    categories = by_column["category"][: limit // 2]
    brands = [b for b in by_column["brand"] if b not in categories]
    return (categories + brands + by_column["category"][limit // 2 :])[:limit]


def browse_links(limit: int = 12) -> Facets:
    """The catalogue's biggest categories and stores, for browsing without typing (home page):
    {"category": [(value, label, count)], "store": [(slug, name, count)]}: the served index
    version's counts (search.catalogue_summary), else the database's, cached for a while."""
    summary = catalogue_summary.served()
    cached = None if summary is not None else _examples_cache.get(("browse", limit))
    if cached is not None:
        return cached

    def count() -> Facets:
        counts = facet_counts(product_ids=[], filters=SearchFilters())
        return {name: counts.get(name, [])[:limit] for name in ("category", "store")}

    if summary is not None:
        return count()
    return _counted_once(("browse", limit), count, {"category": [], "store": []})


def clear_examples() -> None:
    _examples_cache.clear()
