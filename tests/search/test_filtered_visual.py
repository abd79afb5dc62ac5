"""Filtered visual candidates with the snapshot are the database path's, product for product and in
order: structural filters from the snapshot's rows, price/stock filters by ranking the structural
superset and checking the hits now, including products changed since the index was built."""

import random
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from catalog.models import Product
from pipeline.indexing import build_index
from search import live_rows, selectors, services, signals, snapshot
from search.encoder import get_encoder
from search.index import get_index
from search.models import Embedding
from search.selectors import SearchFilters
from tests.factories import ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db
BRANDS = ["Acme", "Birch", "Cobalt"]


@pytest.fixture(autouse=True)
def _reload_at_once(settings):
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0


def catalogue(settings, n=120, seed=0):
    """Products with brands, prices and stock (some with two images); returns {product pk: the
    vector of its first image}."""
    rng = random.Random(seed)
    dim = get_encoder().dim
    raw = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    stores = [StoreFactory(slug=f"s{i}") for i in range(2)]
    first = {}
    for i in range(n):
        product = ProductFactory(
            store=stores[i % 2],
            brand=BRANDS[i % 3],
            price=Decimal(rng.randrange(100, 9000)) / 100,
            availability="in_stock" if i % 4 else "out_of_stock",
        )
        for position in range(1 + (i % 5 == 0)):
            image = ProductImageFactory(product=product, position=position)
            v = raw[i] + 0.1 * position
            v = (v / np.linalg.norm(v)).astype(np.float32)
            Embedding.objects.create(
                asset=image.asset, model_name=settings.MEEPO_CLIP_MODEL, dim=dim, vector=v.tobytes()
            )
            first.setdefault(product.pk, v)
    assert build_index().status == "published"
    return first


def found(settings, vector, filters, *, snapshot_on, depth=10):
    settings.MEEPO_SEARCH_SNAPSHOT = snapshot_on
    services.clear_caches()
    hits = signals.visual_candidates(vector, filters=filters, depth=depth, timings={})
    return [(c.product_id, c.image_id) for c in hits]


def same_both_ways(settings, vector, filters, **kw):
    with_snapshot = found(settings, vector, filters, snapshot_on=True, **kw)
    assert with_snapshot == found(settings, vector, filters, snapshot_on=False, **kw), filters
    return with_snapshot


def spy(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


FILTERS = [
    SearchFilters(brands=("Acme",)),
    SearchFilters(brands=("Acme", "Birch"), stores=("s1",)),
    SearchFilters(brands=("Acme",), in_stock=True),
    SearchFilters(brands=("Birch",), min_price=Decimal("20"), max_price=Decimal("70")),
    SearchFilters(stores=("s0",), in_stock=True, max_price=Decimal("50")),
    SearchFilters(brands=("Nope",), in_stock=True),  # nothing allowed
    SearchFilters(in_stock=True),  # no structural part: the database lists the ids
]


def test_filtered_candidates_match_the_database_path(tiny_clip, settings):
    settings.MEEPO_RELEVANCE_FLOOR = False
    catalogue(settings)
    queries = np.random.default_rng(7).normal(size=(6, get_encoder().dim)).astype(np.float32)
    nonempty = 0
    for filters in FILTERS:
        for q in queries:
            nonempty += bool(same_both_ways(settings, q / np.linalg.norm(q), filters))
        # Two query vectors at once (a photo's crops, a product's pictures).
        same_both_ways(settings, queries[:2], filters)
    assert nonempty >= 6 * (len(FILTERS) - 1)


def change_since_build(*, stamp: bool):
    """Acme products changed after the build: (in stock and at 10 EUR now, out of stock now,
    inactive now). `stamp`: as catalog.services writes them, with updated_at."""
    acme = list(Product.objects.filter(brand="Acme").order_by("pk"))
    was_out = next(p for p in acme if p.availability == "out_of_stock")  # has two images
    was_in = next(p for p in acme if p.availability == "in_stock")
    gone = [p for p in acme if p.availability == "in_stock"][1]
    extra = {"updated_at": timezone.now()} if stamp else {}
    Product.objects.filter(pk=was_out.pk).update(
        availability="in_stock", price=Decimal("10"), **extra
    )
    Product.objects.filter(pk=was_in.pk).update(availability="out_of_stock", **extra)
    Product.objects.filter(pk=gone.pk).update(is_active=False, **extra)
    return was_out, was_in, gone


def assert_changes_seen(settings, first, was_out, was_in, gone):
    in_stock = SearchFilters(brands=("Acme",), in_stock=True)
    hits = found(settings, first[was_out.pk], in_stock, snapshot_on=True)
    assert hits[0][0] == was_out.pk  # in stock now, though not at the build
    for changed in (was_in, gone):  # out of stock, inactive now
        hits = found(settings, first[changed.pk], in_stock, snapshot_on=True)
        assert changed.pk not in {p for p, _ in hits}
    cheap = SearchFilters(brands=("Acme",), max_price=Decimal("10"))
    assert found(settings, first[was_out.pk], cheap, snapshot_on=True)[0][0] == was_out.pk
    for product in (was_out, was_in, gone):
        for filters in (in_stock, cheap, SearchFilters(in_stock=True)):
            same_both_ways(settings, first[product.pk], filters)


def test_price_and_stock_follow_the_changes_since_the_build(tiny_clip, settings, monkeypatch):
    settings.MEEPO_RELEVANCE_FLOOR = False
    # No margin: the catalogue was written just before the build, and only the three products
    # changed after it must be in the delta (the rest come from the build-time columns).
    monkeypatch.setattr(live_rows, "CHANGE_MARGIN", timedelta(0))
    first = catalogue(settings)
    changed = change_since_build(stamp=True)
    database = spy(monkeypatch, selectors, "allowed_image_ids")
    checks = spy(monkeypatch, live_rows, "passing_product_ids")
    deltas = []
    real = live_rows.changed_products
    monkeypatch.setattr(
        live_rows, "changed_products", lambda *a: deltas.append(real(*a)) or deltas[-1]
    )
    assert_changes_seen(settings, first, *changed)
    assert len(database) == 9  # only the runs without the snapshot listed the allowed ids
    assert checks == []
    assert {tuple(sorted(d[0])) for d in deltas} == {tuple(sorted(p.pk for p in changed))}


def test_a_change_stamped_just_before_the_snapshot_read_is_seen(tiny_clip, settings):
    """A writer's transaction can stamp updated_at before the snapshot reads the catalogue and
    commit after: CHANGE_MARGIN treats such products as changed."""
    settings.MEEPO_RELEVANCE_FLOOR = False
    first = catalogue(settings)
    snap = snapshot.for_index(get_index())
    read_at = datetime.fromisoformat(snap.meta["read_at"])
    late = Product.objects.filter(brand="Acme", availability="out_of_stock").first()
    Product.objects.filter(pk=late.pk).update(
        availability="in_stock", updated_at=read_at - live_rows.CHANGE_MARGIN / 2
    )
    in_stock = SearchFilters(brands=("Acme",), in_stock=True)
    assert same_both_ways(settings, first[late.pk], in_stock)[0][0] == late.pk


def test_past_max_changed_hits_are_checked_by_primary_key(tiny_clip, settings, monkeypatch):
    settings.MEEPO_RELEVANCE_FLOOR = False
    monkeypatch.setattr(live_rows, "MAX_CHANGED", -1)  # "too many changes" from the start
    first = catalogue(settings)
    changed = change_since_build(stamp=False)  # no updated_at needed on this path
    database = spy(monkeypatch, selectors, "allowed_image_ids")
    checks = spy(monkeypatch, live_rows, "passing_product_ids")
    in_stock = SearchFilters(brands=("Acme",), in_stock=True)
    assert found(settings, first[changed[0].pk], in_stock, snapshot_on=True)[0][0] == changed[0].pk
    assert database == []  # no query over the whole catalogue
    assert checks
    assert_changes_seen(settings, first, *changed)


def test_a_filter_few_rows_pass_asks_the_database(tiny_clip, settings, monkeypatch):
    settings.MEEPO_RELEVANCE_FLOOR = False
    monkeypatch.setattr(live_rows, "MAX_CHANGED", -1)
    first = catalogue(settings)
    monkeypatch.setattr(live_rows, "CHECK_CHUNK", 1)  # no one-query allowance at this size
    narrow = SearchFilters(brands=("Acme",), min_price=Decimal("20"), max_price=Decimal("22"))
    wide = SearchFilters(brands=("Acme",), in_stock=True)
    database = spy(monkeypatch, selectors, "allowed_image_ids")
    vector = next(iter(first.values()))
    # depth 30: 60 images wanted of ~48 Acme rows; a 2-euro band passes a few of them.
    same_both_ways(settings, vector, narrow, depth=30)
    assert len(database) == 2  # the snapshot run fell back to the database, as the other did
    found(settings, vector, wide, snapshot_on=True, depth=5)
    assert len(database) == 2  # most pass: checked by primary key instead


def test_structural_filters_use_the_snapshot_rows_and_cache_them(tiny_clip, settings, monkeypatch):
    settings.MEEPO_RELEVANCE_FLOOR = False
    first = catalogue(settings)
    rows = spy(monkeypatch, snapshot.Snapshot, "allowed_rows")
    database = spy(monkeypatch, selectors, "allowed_image_ids")
    filters = SearchFilters(brands=("Cobalt",))
    for vector in list(first.values())[:3]:
        assert found(settings, vector, filters, snapshot_on=True)
    assert len(rows) == 1  # built once for the version, then reused
    assert database == []
