"""Reads for search: keyword hits (FTS5/BM25 or PostgreSQL tsvector, see search.keyword), the filtered id sets handed to the vector index,
facet counts, and hydration of hits into products in a constant number of queries.

Every function here takes a `SearchFilters` and applies it *inside* its query, so a selective
filter narrows the candidates before ranking instead of throwing ranked results away afterwards.
Shopper text never reaches FTS5's query syntax: `fts_match_expression` keeps only word tokens and
quotes each one.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import numpy as np
from django.db import connection
from django.db.models import Count, F, Max, Min, Prefetch
from numpy.typing import NDArray

from catalog.models import Product, ProductImage, ProductVariant, Store
from search import keyword
from search.attributes import ATTRIBUTES, display_label
from search.keyword import sqlite as keyword_sqlite
from search.models import Embedding

# Column weights (title > brand > category, tags > description): see search.keyword.
BM25_WEIGHTS = keyword_sqlite.BM25_WEIGHTS
MAX_QUERY_TOKENS = 12
MAX_TOKEN_CHARS = 40
# Allowed-id sets are reused for this long: shoppers repeat the same few filters, and the catalogue
# changes only when the pipeline runs (hourly at most).
ALLOWED_IDS_TTL_SECONDS = 60.0
ALLOWED_IDS_CACHE_SIZE = 32
FACET_VALUES = 20  # values listed per facet, most frequent first
# BM25 scores every match of a query, so a broad word ("fork" in a million products) costs time in
# proportion to the catalogue. Past this many matches only the newest are scored: the keyword
# list then ranks the newest matches, while the visual list still covers the whole catalogue.
KEYWORD_SCORED_MAX = 5_000
# Prefix matching (search as you type) starts at this many characters: "fo*" expands to every word
# starting with "fo" in the catalogue and says almost nothing about what the shopper wants.
PREFIX_MIN_CHARS = 3
# Words that must not be required in a product: "pillow for the sofa" is about a pillow and a sofa.
# fmt: off
STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "of", "on",
    "or", "the", "this", "to", "with", "your",
})
# fmt: on
_WORD = re.compile(r"\w+", re.UNICODE)
# A word the shopper put a minus before ("mug -ceramic"); a hyphen inside a word ("t-shirt") is not.
_NEGATIVE = re.compile(r"(?:^|(?<=\s))-(\w+)", re.UNICODE)


@dataclass(frozen=True)
class SearchFilters:
    """What a shopper narrowed the search to. Empty tuples and None mean "any"."""

    stores: tuple[str, ...] = ()  # store slugs
    brands: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool = False
    # Zero-shot attributes: ((name, values), ...) with names from search.attributes.ATTRIBUTES.
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (
            self.stores
            or self.brands
            or self.categories
            or any(values for _, values in self.attributes)
            or self.min_price is not None
            or self.max_price is not None
            or self.in_stock
        )

    def sql(self, alias: str = "p") -> tuple[str, list]:
        """A WHERE fragment over catalog_product `alias` (active products only) and its params."""
        clauses = [f"{alias}.is_active"]
        params: list = []
        if self.stores:
            marks = ",".join("%s" for _ in self.stores)
            clauses.append(
                f"{alias}.store_id IN (SELECT id FROM catalog_store WHERE slug IN ({marks}))"
            )
            params += list(self.stores)
        for column, values in (("brand", self.brands), ("category", self.categories)):
            if values:
                clauses.append(f"{alias}.{column} IN ({','.join('%s' for _ in values)})")
                params += list(values)
        if self.min_price is not None:
            clauses.append(f"{alias}.price >= %s")
            params.append(float(self.min_price))
        if self.max_price is not None:
            clauses.append(f"{alias}.price <= %s")
            params.append(float(self.max_price))
        if self.in_stock:
            clauses.append(f"{alias}.availability = %s")
            params.append(Product.Availability.IN_STOCK)
        for name, values in self.attributes:
            if name in ATTRIBUTES and values:  # the column name comes from code, never a shopper
                clauses.append(
                    f"{alias}.id IN (SELECT product_id FROM catalog_productattributes "
                    f"WHERE {name} IN ({','.join('%s' for _ in values)}))"
                )
                params += list(values)
        return " AND ".join(clauses), params

    def queryset(self):
        """The same filter as an ORM queryset of active products."""
        qs = Product.objects.active()
        if self.stores:
            qs = qs.filter(store__slug__in=self.stores)
        if self.brands:
            qs = qs.filter(brand__in=self.brands)
        if self.categories:
            qs = qs.filter(category__in=self.categories)
        if self.min_price is not None:
            qs = qs.filter(price__gte=self.min_price)
        if self.max_price is not None:
            qs = qs.filter(price__lte=self.max_price)
        if self.in_stock:
            qs = qs.in_stock()
        for name, values in self.attributes:
            if name in ATTRIBUTES and values:
                qs = qs.filter(**{f"attributes__{name}__in": values})
        return qs


def fts_match_terms(query: str, *, prefix_last: bool = True) -> list[str]:
    """The query's words as quoted FTS5 terms (the last one a prefix while the shopper types).

    Each word is double-quoted, so FTS5 operators (AND, NEAR, *, ^, column:) and quotes typed by a
    shopper are plain text. Stopwords are dropped unless that leaves nothing.
    """
    tokens = [t[:MAX_TOKEN_CHARS] for t in _WORD.findall(query)][:MAX_QUERY_TOKENS]
    if not tokens:
        return []
    prefix = prefix_last and not query[-1:].isspace() and len(tokens[-1]) >= PREFIX_MIN_CHARS
    terms = [f'"{t}"' for t in tokens]
    if prefix:
        terms[-1] += "*"
    kept = [
        term for token, term in zip(tokens, terms, strict=True) if token.lower() not in STOPWORDS
    ]
    return kept or terms  # "the the" still searches for "the"


def _match(terms: list[str], *, any_word: bool = False, exclude: tuple[str, ...] = ()) -> str:
    return keyword_sqlite.match(terms, any_word=any_word, exclude=exclude)


def fts_match_expression(query: str, *, any_word: bool = False, prefix_last: bool = True) -> str:
    """An FTS5 MATCH expression meaning "all of these words" (or any, with `any_word`), or ""."""
    return _match(fts_match_terms(query, prefix_last=prefix_last), any_word=any_word)


def split_negatives(query: str) -> tuple[str, tuple[str, ...]]:
    """("mug", ("ceramic",)) for "mug -ceramic": the words to search for, and those to exclude.

    A query that is nothing but minus-words ("-ceramic") is searched as typed: there is nothing
    to exclude it from.
    """
    negatives = tuple(dict.fromkeys(w.lower() for w in _NEGATIVE.findall(query)))
    positive = " ".join(_NEGATIVE.sub(" ", query).split())
    if not negatives or not _WORD.search(positive):
        return query, ()
    return positive, negatives[:MAX_QUERY_TOKENS]


def keyword_hits(
    *,
    query: str,
    filters: SearchFilters,
    limit: int,
    any_word: bool = False,
    exclude: tuple[str, ...] = (),
) -> list[tuple[int, float]]:
    """(product id, bm25 score; lower is better) for products matching `query`, best first.

    All words must match by default: that is the precise signal (names, brands, SKUs) and it stays
    cheap on a big catalogue, where "any word" scores a large share of all products with BM25.
    Products matching any of the `exclude` words are left out.
    """
    terms = fts_match_terms(query)
    if not terms:
        return []
    where, params = filters.sql("p")
    # One word can match a large share of the catalogue: then only its newest
    # KEYWORD_SCORED_MAX matches are scored. Several words are intersected, which narrows them
    # already, and under a filter every match that passes it is scored: a selective filter could
    # leave few of the newest.
    newest = KEYWORD_SCORED_MAX if len(terms) == 1 and filters.is_empty else None
    return keyword.backend().hits(
        terms=terms,
        any_word=any_word,
        exclude=exclude,
        where=where,
        params=params,
        limit=limit,
        newest_bound=newest,
    )


def keyword_count(*, query: str, filters: SearchFilters, exclude: tuple[str, ...] = ()) -> int:
    """How many products match every word of `query` under `filters` (the exact keyword count).

    Asked only when the ranked keyword list was cut at its depth; counting walks the matches
    without scoring them.
    """
    terms = fts_match_terms(query)
    if not terms:
        return 0
    where, params = filters.sql("p")
    return keyword.backend().count(terms=terms, exclude=exclude, where=where, params=params)


def products_matching_any(words: tuple[str, ...], product_ids: list[int]) -> set[int]:
    """Which of `product_ids` mention any of `words` (stemmed, accents folded, as FTS matches)."""
    if not words or not product_ids:
        return set()
    return keyword.backend().matching_any(words, product_ids)


def exact_match_ids(*, query: str, filters: SearchFilters, limit: int = 5) -> list[int]:
    """Products whose platform id, SKU, GTIN, MPN (or a variant's SKU/GTIN) or whole title
    equals the query: these go first.

    Every lookup uses an index, never a scan of the catalogue: the platform id through the
    (store, external_id) unique index, one probe per store; identifiers through their own
    indexes (a GTIN typed as UPC-A, EAN-13 or GTIN-14 finds the same product); the title through
    an FTS5 phrase query on the title column, then an exact, case-insensitive comparison.
    """
    text = query.strip()
    if not text or len(text) > 300:
        return []
    tokens = _WORD.findall(text)[:MAX_QUERY_TOKENS]
    found = (
        "SELECT p.id FROM catalog_product p "
        "WHERE p.store_id IN (SELECT id FROM catalog_store) AND p.external_id = %s"
    )
    args = [text]
    found, args = _identifier_lookups(text, found, args)
    if tokens:
        title_sql, title_args = keyword.backend().title_equals(text, tokens)
        found += f" UNION {title_sql}"
        args += title_args
    # The few rows found are checked against the filters afterwards, so a filter's own index
    # (brand, price...) never replaces the lookups above with a scan.
    where, params = filters.sql("p")
    sql = f"SELECT p.id FROM catalog_product p WHERE p.id IN ({found}) AND {where} ORDER BY p.id LIMIT %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*args, *params, limit])
        return [int(row[0]) for row in cursor.fetchall()]


def gtin_forms(text: str) -> list[str]:
    """The stored forms a typed GTIN may have: "0 12345 67890 5" (UPC-A) -> its 13-digit form.

    Stored GTINs are digits only: GTIN-8 as is, UPC-A/EAN-13 as 13 digits, GTIN-14 as 14
    (see catalog.services.ProductData).
    """
    digits = re.sub(r"[\s-]", "", text)
    if not digits.isdigit() or not 8 <= len(digits) <= 14:
        return []
    forms = {digits, digits.zfill(13) if len(digits) <= 13 else digits, digits.zfill(14)}
    if len(digits) == 14 and digits.startswith("0"):
        forms.add(digits[1:])
    return sorted(forms)


def _identifier_lookups(text: str, found: str, args: list) -> tuple[str, list]:
    """`found` and `args` extended with the SKU, MPN and GTIN lookups for `text`."""
    if len(text) > 100:
        return found, args
    codes = list(dict.fromkeys([text, text.upper()]))
    marks = ", ".join(["%s"] * len(codes))
    for table, column in (("catalog_product", "sku"), ("catalog_product", "mpn")):
        found += f" UNION SELECT id FROM {table} WHERE {column} IN ({marks})"
        args = [*args, *codes]
    found += f" UNION SELECT product_id FROM catalog_productvariant WHERE sku IN ({marks})"
    args = [*args, *codes]
    if gtins := gtin_forms(text):
        marks = ", ".join(["%s"] * len(gtins))
        found += (
            f" UNION SELECT id FROM catalog_product WHERE gtin IN ({marks})"
            f" UNION SELECT product_id FROM catalog_productvariant WHERE gtin IN ({marks})"
        )
        args = [*args, *gtins, *gtins]
    return found, args


class _TTLCache:
    """A tiny thread-safe LRU with expiry, per process (gunicorn threads share it)."""

    def __init__(self, size: int, ttl: float):
        self.size, self.ttl = size, ttl
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            item = self._items.get(key)
            if item is None or time.monotonic() - item[0] > self.ttl:
                return None
            self._items.move_to_end(key)
            return item[1]

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_allowed_ids_cache = _TTLCache(ALLOWED_IDS_CACHE_SIZE, ALLOWED_IDS_TTL_SECONDS)


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


def hydrate_products(product_ids: list[int]) -> dict[int, Product]:
    """{id: Product} with store and images (+assets) loaded: two queries whatever the count."""
    if not product_ids:
        return {}
    images = Prefetch(
        "images",
        queryset=ProductImage.objects.filter(asset__isnull=False)
        .select_related("asset")
        .order_by("position", "pk"),
        to_attr="ready_images",
    )
    products = Product.objects.filter(pk__in=product_ids).select_related("store")
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


# Facet name -> the Product lookup counted; attributes live in catalog.ProductAttributes.
FACET_COLUMNS = {"brand": "brand", "category": "category"} | {
    name: f"attributes__{name}" for name in ATTRIBUTES
}


def _facet_label(name: str, value: str) -> str:
    return display_label(name, value) if name in ATTRIBUTES else value


def facet_counts(*, product_ids: list[int], filters: SearchFilters) -> dict[str, list[tuple]]:
    """Counts per store, brand, category and zero-shot attribute among a query's candidates.

    With no query (`product_ids` empty and browsing), the counts cover every product that passes
    the filters. Two queries for a query's candidates (a few hundred rows, counted here: cheaper
    than GROUP BYs), one per facet when browsing (grouped in SQL: that can be the whole catalogue).
    """
    qs = filters.queryset()
    if product_ids:
        rows = list(qs.filter(pk__in=product_ids).values_list("store_id", *FACET_COLUMNS.values()))
        stores = Counter(row[0] for row in rows)
        counted = {
            name: Counter(row[i] for row in rows if row[i])
            for i, name in enumerate(FACET_COLUMNS, start=1)
        }

        def column(name: str) -> list[tuple]:
            top = sorted(counted[name].items(), key=lambda kv: (-kv[1], kv[0]))[:FACET_VALUES]
            return [(value, _facet_label(name, value), n) for value, n in top]

    else:
        stores = dict(
            qs.values_list("store_id")
            .annotate(n=Count("id"))
            .order_by()
            .values_list("store_id", "n")
        )

        def column(name: str) -> list[tuple]:
            lookup = FACET_COLUMNS[name]
            rows = (
                qs.filter(**{f"{lookup}__gt": ""})
                .values_list(lookup)
                .annotate(n=Count("id"))
                .order_by("-n", lookup)
                .values_list(lookup, "n")[:FACET_VALUES]
            )
            return [(value, _facet_label(name, value), n) for value, n in rows]

    store_rows = sorted(
        (
            (slug, name, stores[pk])
            for pk, slug, name in Store.objects.filter(pk__in=stores).values_list(
                "pk", "slug", "name"
            )
        ),
        key=lambda r: (-r[2], r[1]),
    )
    return {"store": store_rows} | {name: column(name) for name in FACET_COLUMNS}


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


def sort_keys(product_ids: list[int]) -> dict[int, tuple[Decimal | None, datetime | None]]:
    """{product id: (price, first seen)} for re-sorting a query's candidates, in one query."""
    rows = Product.objects.filter(pk__in=product_ids).values_list("pk", "price", "first_seen_at")
    return {pk: (price, seen) for pk, price, seen in rows}


def variants_of(product_ids: list[int]) -> dict[int, list[ProductVariant]]:
    """{product id: its variants in the store's order}, in one query."""
    found: dict[int, list[ProductVariant]] = {pk: [] for pk in product_ids}
    if product_ids:
        for variant in ProductVariant.objects.filter(product_id__in=product_ids).order_by(
            "product_id", "position", "pk"
        ):
            found[variant.product_id].append(variant)
    return found


def offers_for(products: list[Product]) -> dict[int, list[Product]]:
    """{product id: the same product (same GTIN) at other stores, active, cheapest first}.

    One query for any number of products; products without a GTIN have no offers.
    """
    gtins = {p.gtin for p in products if p.gtin}
    if not gtins:
        return {p.pk: [] for p in products}
    twins = list(
        Product.objects.active()
        .filter(gtin__in=gtins)
        .select_related("store")
        .order_by(F("price").asc(nulls_last=True), "pk")
    )
    return {
        p.pk: [t for t in twins if t.gtin == p.gtin and t.store_id != p.store_id] if p.gtin else []
        for p in products
    }


def product_gtins(product_ids: list[int]) -> dict[int, tuple[str, bool, Decimal | None]]:
    """{product id: (GTIN, in stock, price)} for those of `product_ids` with a GTIN, one query."""
    if not product_ids:
        return {}
    rows = (
        Product.objects.filter(pk__in=product_ids)
        .exclude(gtin="")
        .values_list("pk", "gtin", "availability", "price")
    )
    return {
        pk: (gtin, availability == Product.Availability.IN_STOCK, price)
        for pk, gtin, availability, price in rows
    }


EXAMPLES_TTL_SECONDS = 600.0
_examples_cache = _TTLCache(2, EXAMPLES_TTL_SECONDS)


def example_queries(limit: int = 6) -> list[str]:
    """Searches the catalogue can answer, for the home page and empty results: its most common
    categories and brands (lower-cased), cached for a while; none for an empty catalogue."""
    cached = _examples_cache.get("examples")
    if cached is not None:
        return cached
    qs = Product.objects.active()
    by_column = {}
    for column in ("category", "brand"):
        rows = (
            qs.exclude(**{column: ""})
            .values_list(column)
            .annotate(n=Count("id"))
            .order_by("-n", column)
            .values_list(column, flat=True)[:limit]
        )
        by_column[column] = [r.lower() for r in rows]
    categories = by_column["category"][: limit // 2]
    brands = [b for b in by_column["brand"] if b not in categories]
    examples = (categories + brands + by_column["category"][limit // 2 :])[:limit]
    _examples_cache.put("examples", examples)
    return examples


def browse_links(limit: int = 12) -> dict[str, list[tuple]]:
    """The catalogue's biggest categories and stores, for browsing without typing (home page):
    {"category": [(value, label, count)], "store": [(slug, name, count)]}, cached for a while."""
    cached = _examples_cache.get("browse")
    if cached is not None:
        return cached
    counts = facet_counts(product_ids=[], filters=SearchFilters())
    links = {name: counts.get(name, [])[:limit] for name in ("category", "store")}
    _examples_cache.put("browse", links)
    return links


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
