"""Reads for search: the filtered id sets handed to the vector index, owners of index hits,
hydration of hits into products in a constant number of queries, browsing, and the home page's
examples.

Every function here takes a `SearchFilters` and applies it *inside* its query, so a selective
filter narrows the candidates before ranking instead of throwing ranked results away afterwards.
The keyword queries live in search.fts, facets in search.facets, the filter value object in
search.filters; all are re-exported here, so `selectors.keyword_hits` and friends stay the one
read interface the services (and the benchmarks' profiler) call.
"""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

import numpy as np
from django.db import connection
from django.db.models import F, Prefetch
from numpy.typing import NDArray

from catalog.models import Product, ProductImage, ProductVariant
from search import fts, hydration, live_rows
from search.caching import TTLCache
from search.facets import (  # noqa: F401  (re-exported)
    FACET_COLUMNS,
    FACET_VALUES,
    FacetRow,
    Facets,
    browse_links,
    clear_examples,
    example_queries,
    facet_counts,
    price_range,
)
from search.filters import SearchFilters
from search.fts import (  # noqa: F401  (re-exported)
    BM25_WEIGHTS,
    KEYWORD_SCORED_MAX,
    MAX_QUERY_TOKENS,
    MAX_TOKEN_CHARS,
    PREFIX_MIN_CHARS,
    STOPWORDS,
    fts_match_terms,
    gtin_forms,
    keyword_count,
    keyword_hits,
    may_name_attributes,
    products_matching_any,
    split_negatives,
)
from search.id_query import IdQuery, instances
from search.models import Embedding

# Allowed-id sets are reused for this long: shoppers repeat the same few filters, and the catalogue
# changes only when the pipeline runs (hourly at most).
ALLOWED_IDS_TTL_SECONDS = 60.0
ALLOWED_IDS_CACHE_SIZE = 32

_allowed_ids_cache = TTLCache(ALLOWED_IDS_CACHE_SIZE, ALLOWED_IDS_TTL_SECONDS)


def allowed_image_ids(*, filters: SearchFilters) -> NDArray[np.int64] | None:
    """ProductImage ids (faiss ids) of the products that pass `filters`; None means "all".

    Handed to `SearchIndex.search(allowed_ids=...)`, which searches exactly that subset, so the
    page is full of the best filtered matches however selective the filter is.
    """
    if filters.is_empty:
        return None
    cached = _allowed_ids_cache.get(filters)
    if cached is not None:
        return cached
    where, params = filters.sql("p")
    sql = (
        "SELECT i.id FROM catalog_productimage i JOIN catalog_product p ON p.id = i.product_id "
        f"WHERE i.asset_id IS NOT NULL AND NOT i.is_shared AND {where}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = np.fromiter((row[0] for row in cursor.fetchall()), dtype=np.int64)
    ids.sort()
    _allowed_ids_cache.put(filters, ids)
    return ids


def exact_match_ids(*, query: str, filters: SearchFilters, limit: int = 5) -> list[int]:
    """`search.fts.exact_match_ids`, without its query when the served version says nothing
    can match (search.exact_guard, with the lean data path): the same ids either way."""
    text = query.strip()
    if text and len(text) <= 300 and live_rows.fast():
        snap = _served_snapshot()
        if snap is not None:
            from search import exact_guard

            if not exact_guard.may_match(snap, text):
                return []
    return fts.exact_match_ids(query=query, filters=filters, limit=limit)


def _served_snapshot():
    """The served version's snapshot, None without one (or without an index)."""
    from search import snapshot
    from search.exceptions import IndexNotReady, ModelNotAvailable
    from search.index import get_index

    try:
        return snapshot.for_index(get_index())
    except (IndexNotReady, ModelNotAvailable):
        return None


def image_products(image_ids: list[int]) -> dict[int, tuple[int, int | None]]:
    """{image id: (product id, asset id)} for index hits of active products, in one query.

    A product deactivated since the index was built drops out here, not at the next rebuild.
    """
    if not image_ids:
        return {}
    # Plain SQL: on every search, for a few hundred ids, the ORM's query building cost more
    # than the query.
    marks = ", ".join(["%s"] * len(image_ids))
    sql = (
        "SELECT i.id, i.product_id, i.asset_id FROM catalog_productimage i "
        f"JOIN catalog_product p ON p.id = i.product_id WHERE p.is_active AND i.id IN ({marks})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, image_ids)
        return {pk: (product_id, asset_id) for pk, product_id, asset_id in cursor.fetchall()}


def product_vectors(*, product_id: int, model_name: str, limit: int = 4) -> NDArray[np.float32]:
    """The stored vectors of a product's own images for `model_name`, main image first."""
    rows = (
        Embedding.objects.filter(
            model_name=model_name,
            asset__product_images__product_id=product_id,
            asset__product_images__is_shared=False,
        )
        .order_by("asset__product_images__position")
        .values_list("vector", "dim")[:limit]
    )
    vectors = [np.frombuffer(bytes(vec), dtype="<f4", count=dim) for vec, dim in rows]
    if not vectors:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack(vectors).astype(np.float32)


# What a result card and the API's hit show of a product, its store and its pictures: hits are
# hydrated with these columns only (`hydrate_products(lean=True)`; descriptions, tags, crawl
# bookkeeping and timestamps stay in the database). Reading any other field of a hit's product
# would cost a query per hit: tests/search/test_hydration.py renders pages and the API with a
# fixed query count.
HIT_PRODUCT_FIELDS = (
    "id", "store_id", "title", "url", "brand", "category", "price", "price_max", "list_price",
    "currency", "availability", "sku", "gtin", "mpn", "store__id", "store__slug", "store__name",
)  # fmt: skip
HIT_IMAGE_FIELDS = (
    "id", "product_id", "position", "asset_id",
    "asset__id", "asset__thumbnail", "asset__width", "asset__height", "asset__placeholder",
)  # fmt: skip


def hydrate_products(product_ids: list[int], *, lean: bool = False) -> dict[int, Product]:
    """{id: Product} with store and images (+assets) loaded: two queries whatever the count.
    `lean`: only the columns a result card and the API's hit show (HIT_PRODUCT_FIELDS), read in
    one statement (search.hydration) into the instances the ORM's `only()`, `select_related`
    and `Prefetch(to_attr="ready_images")` would make (in no particular order)."""
    if not product_ids:
        return {}
    if lean:
        return hydration.hydrate(product_ids)
    images_qs = ProductImage.objects.filter(asset__isnull=False).select_related("asset")
    products = Product.objects.filter(pk__in=product_ids).select_related("store")
    images = Prefetch(
        "images", queryset=images_qs.order_by("position", "pk"), to_attr="ready_images"
    )
    return {p.pk: p for p in products.prefetch_related(images)}


def get_product(product_id: int) -> Product | None:
    """One active or inactive product with its store, ready images, variants (`variant_list`)
    and the same product at other stores (`offers`, cheapest first), or None."""
    product = hydrate_products([product_id]).get(product_id)
    if product is not None:
        product.variant_list = variants_of([product_id])[product_id]
        product.offers = offers_for([product])[product_id]
    return product


def has_own_images(product_id: int) -> bool:
    """Whether the product has a picture of its own (not only shared ones such as size charts),
    downloaded or still pending: without one it never gets a vector of its own."""
    return ProductImage.objects.filter(product_id=product_id, is_shared=False).exists()


BROWSE_ORDER = {
    "price_asc": (F("price").asc(nulls_last=True), "-pk"),
    "price_desc": (F("price").desc(nulls_last=True), "-pk"),
    "newest": ("-first_seen_at", "-pk"),
}


def browse_product_ids(
    *, filters: SearchFilters, limit: int, offset: int, sort: str = "relevance"
) -> list[int]:
    """Products passing `filters` with no query: most recently seen first, or as sorted."""
    order = BROWSE_ORDER.get(sort, ("-last_seen_at", "-pk"))
    qs = filters.queryset().order_by(*order).values_list("pk", flat=True)
    return list(qs[offset : offset + limit])


class CandidateRow(NamedTuple):
    """What ranking a page needs of each candidate beyond the index: one row per product."""

    gtin: str
    in_stock: bool
    price: Decimal | None
    currency: str
    first_seen_at: datetime | None
    is_active: bool


# A tuple as a CandidateRow without the named tuple's own `_make` (a Python-level call per row).
_as_candidate_row = functools.partial(tuple.__new__, CandidateRow)


def candidate_rows(product_ids: list[int], *, first_seen: bool = True) -> dict[int, CandidateRow]:
    """{product id: CandidateRow} for a query's candidates, in one query: the shopper's sort,
    one result per GTIN and the price range are all cut from these rows (three queries before).
    `first_seen=False`: `first_seen_at` is left None, unread (only a sort by date needs it; a
    date is the costliest column to convert)."""
    if not product_ids:
        return {}
    in_stock = Product.Availability.IN_STOCK
    if not first_seen:
        found, product_ids = _snapshot_rows(product_ids)
        found.update(
            (pk, CandidateRow(gtin, availability == in_stock, price, currency, None, active))
            for pk, gtin, availability, price, currency, active in _candidate_rows_undated.rows(
                product_ids
            )
        )
        return found
    return {
        pk: CandidateRow(gtin, availability == in_stock, *rest)
        for pk, gtin, availability, *rest in _candidate_rows.rows(product_ids)
    }


def _snapshot_rows(product_ids: list[int]) -> tuple[dict[int, CandidateRow], list[int]]:
    """(candidate rows the served version's snapshot holds for products unchanged since its
    build, with the lean data path on; the ids left for the database)."""
    if not live_rows.fast():
        return {}, product_ids
    snap = _served_snapshot()
    if snap is None:
        return {}, product_ids
    return snap.candidate_rows(product_ids, live_rows.changed_ids(snap), _as_candidate_row)


_CANDIDATE_COLUMNS = (
    "pk",
    "gtin",
    "availability",
    "price",
    "currency",
    "first_seen_at",
    "is_active",
)
_candidate_rows = IdQuery(
    lambda ids: Product.objects.filter(pk__in=ids).values_list(*_CANDIDATE_COLUMNS)
)
_candidate_rows_undated = IdQuery(
    lambda ids: Product.objects.filter(pk__in=ids).values_list(
        *(c for c in _CANDIDATE_COLUMNS if c != "first_seen_at")
    )
)


def sort_keys(product_ids: list[int]) -> dict[int, tuple[Decimal | None, datetime | None]]:
    """{product id: (price, first seen)} for re-sorting a query's candidates, in one query."""
    rows = candidate_rows(product_ids)
    return {pk: (row.price, row.first_seen_at) for pk, row in rows.items()}


def variants_of(product_ids: list[int]) -> dict[int, list[ProductVariant]]:
    """{product id: its variants in the store's order}, in one query; none for the products this
    request's hydration found without variants (search.hydration: most pages need no query)."""
    found: dict[int, list[ProductVariant]] = {pk: [] for pk in product_ids}
    memo = live_rows.scope_memo()
    if memo is not None:
        product_ids = [pk for pk in product_ids if memo.get(hydration.variants_key(pk), True)]
    if product_ids:
        new_variant = instances(ProductVariant, _variants.db, _VARIANT_FIELDS)
        for row in _variants.rows(product_ids):
            variant = new_variant(row)
            found[variant.product_id].append(variant)
    return found


_VARIANT_FIELDS = [f.attname for f in ProductVariant._meta.concrete_fields]
_variants = IdQuery(
    lambda ids: (
        ProductVariant.objects.filter(product_id__in=ids)
        .order_by("product_id", "position", "pk")
        .values_list(*_VARIANT_FIELDS)
    )
)


# What a result card and the API's hit show of an offer (`offers_for(lean=True)`).
HIT_OFFER_FIELDS = (
    "id", "store_id", "gtin", "url", "price", "list_price", "currency", "availability",
    "store__id", "store__slug", "store__name",
)  # fmt: skip


def offers_for(products: list[Product], *, lean: bool = False) -> dict[int, list[Product]]:
    """{product id: the same product (same GTIN) at other stores, active, cheapest first}.

    One query for any number of products; products without a GTIN have no offers. `lean`: only
    the columns a result card and the API's hit show of an offer (HIT_OFFER_FIELDS).
    """
    gtins = {p.gtin for p in products if p.gtin}
    if not gtins:
        return {p.pk: [] for p in products}
    twins = (
        Product.objects.active()
        .filter(gtin__in=gtins)
        .select_related("store")
        .order_by(F("price").asc(nulls_last=True), "pk")
    )
    twins = list(twins.only(*HIT_OFFER_FIELDS) if lean else twins)
    return {
        p.pk: [t for t in twins if t.gtin == p.gtin and t.store_id != p.store_id] if p.gtin else []
        for p in products
    }


def product_gtins(product_ids: list[int]) -> dict[int, tuple[str, bool, Decimal | None]]:
    """{product id: (GTIN, in stock, price)} for those of `product_ids` with a GTIN, one query."""
    rows = candidate_rows(product_ids)
    return {pk: (r.gtin, r.in_stock, r.price) for pk, r in rows.items() if r.gtin}


def clear_caches() -> None:
    """Forget cached filter id sets, examples and browse links (tests; after a catalogue change)."""
    _allowed_ids_cache.clear()
    clear_examples()
