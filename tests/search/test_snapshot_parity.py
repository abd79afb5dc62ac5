"""MEEPO_SEARCH_SNAPSHOT changes where owners, filters and facets come from, never the results:
for 200 searches both paths return the same products in the same order, totals and facets."""

import random
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from catalog.models import Product, ProductAttributes
from pipeline.indexing import build_index
from search import selectors, services
from search.encoder import get_encoder
from search.models import Embedding
from search.selectors import SearchFilters
from tests.factories import ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db
WORDS = ["red", "navy", "linen", "oak", "mug", "lamp", "chair", "striped", "vintage", "bowl"]
BRANDS = ["Acme", "Birch", "Cobalt"]
CATEGORIES = ["Kitchen", "Living room"]


@pytest.fixture(autouse=True)
def _reload_at_once(settings):
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0


def catalogue(settings, n=160, seed=0):
    rng = random.Random(seed)
    dim = get_encoder().dim
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    stores = [StoreFactory(slug=f"s{i}") for i in range(3)]
    for i in range(n):
        product = ProductFactory(
            store=stores[i % 3],
            title=" ".join(rng.sample(WORDS, 3)).capitalize(),
            brand=rng.choice(BRANDS),
            category=rng.choice(CATEGORIES),
            price=Decimal(rng.randrange(100, 9000)) / 100,
            availability=rng.choice(["in_stock", "out_of_stock"]),
            gtin=f"{rng.randrange(20):013d}" if i % 5 == 0 else "",
        )
        if i % 3:
            ProductAttributes.objects.create(
                product=product, model_name="m", key="k", colour=rng.choice(["red", "navy"])
            )
        for position in range(1 + (i % 4 == 0)):
            image = ProductImageFactory(product=product, position=position)
            v = vectors[i] + 0.1 * position
            Embedding.objects.create(
                asset=image.asset,
                model_name=settings.MEEPO_CLIP_MODEL,
                dim=dim,
                vector=(v / np.linalg.norm(v)).astype(np.float32).tobytes(),
            )
    assert build_index().status == "published"


def searches(count, seed=1):
    rng = random.Random(seed)
    for _ in range(count):
        query = " ".join(rng.sample(WORDS, rng.randrange(1, 3)))
        if rng.random() < 0.15:
            query += " -" + rng.choice(WORDS)
        filters = rng.choice(
            [
                SearchFilters(),
                SearchFilters(brands=(rng.choice(BRANDS),)),
                SearchFilters(categories=(rng.choice(CATEGORIES),), stores=("s1",)),
                SearchFilters(attributes=(("colour", ("navy",)),)),
                SearchFilters(brands=(rng.choice(BRANDS),), in_stock=True),  # database path
            ]
        )
        sort = rng.choice(["relevance", "relevance", "price_asc", "newest"])
        offset = rng.choice([0, 0, 12])
        yield {"query": query, "filters": filters, "sort": sort, "offset": offset, "limit": 12}


def outcome(page):
    return (
        [h.product.pk for h in page.hits],
        page.total,
        page.has_more,
        page.price_range,
        {k: [tuple(v) for v in rows] for k, rows in page.facets.items()},
    )


def test_two_hundred_searches_same_with_and_without_the_snapshot(tiny_clip, settings, monkeypatch):
    settings.MEEPO_RELEVANCE_FLOOR = False  # the tiny random CLIP's scores mean nothing
    catalogue(settings)
    database_calls, current = [], [None]
    for name in ("image_products", "facet_counts"):
        real = getattr(selectors, name)
        monkeypatch.setattr(
            selectors,
            name,
            lambda *a, _n=name, _r=real, **k: (
                database_calls.append((_n, settings.MEEPO_SEARCH_SNAPSHOT, current[0]))
                or _r(*a, **k)
            ),
        )
    compared = with_hits = 0
    for params in searches(200):
        current[0] = params
        settings.MEEPO_SEARCH_SNAPSHOT = False
        services.clear_caches()
        before = outcome(services.search_products(**params))
        settings.MEEPO_SEARCH_SNAPSHOT = True
        services.clear_caches()
        after = outcome(services.search_products(**params))
        assert after == before, params
        compared += 1
        with_hits += bool(before[0])
    assert compared == 200
    assert with_hits > 150
    # With the snapshot the database answered no owners, and (the lean data path, default:
    # tests/search/test_datapath.py) no facets either, price/stock-filtered ones included.
    on = [(name, params) for name, snap, params in database_calls if snap]
    assert not on


def test_a_unique_search_asks_the_database_less_with_the_snapshot(
    tiny_clip, settings, django_assert_num_queries
):
    """Owners of the hits: which changed since the build, from the updated_at index (not a
    join over every hit, nor a primary-key query when none of them changed); facets: bincounts over the snapshot (not two queries). With the snapshot a
    unique search is: changed owners, products with their pictures, offers at other stores
    (candidate rows and the keyword index's delta: from the snapshot too; no variants query
    when no hit has variants: search.hydration; no exact-match query when nothing can match:
    search.exact_guard)."""
    settings.MEEPO_RELEVANCE_FLOOR = False
    catalogue(settings)
    # The steady state: nothing changed since the build (products written within
    # live_rows.CHANGE_MARGIN of it would count as changed and be re-read by primary key).
    Product.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    query = {"query": "oak lamp", "limit": 12}
    services.search_products(query="mug", limit=12)  # loads the index, snapshot and model
    services.clear_caches()
    # Lean data path: candidate rows from the snapshot, and no keyword-delta query when the
    # owners' look at the changes found none (tests/search/test_datapath.py).
    with django_assert_num_queries(3):
        snap = services.search_products(**query)
    settings.MEEPO_SEARCH_SNAPSHOT = False
    services.clear_caches()
    with django_assert_num_queries(8):  # owners joined in SQL, facets in two queries
        db = services.search_products(**query)
    assert outcome(snap) == outcome(db)
    assert snap.hits
