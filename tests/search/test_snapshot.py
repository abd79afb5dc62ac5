"""The columnar snapshot answers what the database answers (owners, filters, facets)."""

import random
from decimal import Decimal

import numpy as np
import pytest

from catalog.models import Product, ProductAttributes
from search import selectors
from search.selectors import SearchFilters
from search.snapshot import SNAPSHOT_DIR, Snapshot, fresh_product_ids
from search.snapshot_write import write_snapshot
from tests.factories import ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db

BRANDS = ["Acme", "Birch", "Cobalt", ""]
CATEGORIES = ["Kitchen", "Garden", ""]
COLOURS = ["red", "navy", ""]


def catalogue(n=60, seed=0):
    """Products over 3 stores with brands, categories, prices, stock, attributes; some
    inactive, some with two images or a shared one. Returns the indexed image ids (sorted)."""
    rng = random.Random(seed)
    stores = [StoreFactory(slug=f"s{i}", name=f"Shop {'CBA'[i]}") for i in range(3)]
    indexed = []
    for i in range(n):
        product = ProductFactory(
            store=stores[i % 3],
            brand=rng.choice(BRANDS),
            category=rng.choice(CATEGORIES),
            price=None if i % 11 == 0 else Decimal(rng.randrange(100, 9000)) / 100,
            availability=rng.choice(["in_stock", "out_of_stock"]),
            is_active=i % 13 != 5,
        )
        if rng.random() < 0.7:
            ProductAttributes.objects.create(
                product=product, model_name="m", key="k", colour=rng.choice(COLOURS)
            )
        for position in range(1 + (i % 4 == 0)):
            indexed.append(ProductImageFactory(product=product, position=position).pk)
        if i % 7 == 0:  # a size chart: never in the index
            ProductImageFactory(product=product, position=5, is_shared=True)
    return np.array(sorted(indexed), dtype=np.int64)


def snapshot(tmp_path, ids):
    write_snapshot(tmp_path, ids)
    snap = Snapshot.load(tmp_path)
    assert snap is not None
    return snap


def filter_cases(rng, count):
    for _ in range(count):
        yield SearchFilters(
            stores=tuple(rng.sample(["s0", "s1", "s2", "nope"], rng.randrange(0, 3))),
            brands=tuple(rng.sample([*BRANDS[:3], "Unknown"], rng.randrange(0, 3))),
            categories=tuple(rng.sample(CATEGORIES[:2], rng.randrange(0, 2))),
            attributes=(("colour", tuple(rng.sample(COLOURS[:2], rng.randrange(0, 2)))),),
            min_price=rng.choice([None, Decimal("20")]),
            max_price=rng.choice([None, Decimal("60.5")]),
            in_stock=rng.random() < 0.4,
        )


def test_a_version_without_snapshot_loads_as_none(tmp_path):
    assert Snapshot.load(tmp_path) is None


def test_files_are_written_beside_the_version(tmp_path):
    ids = catalogue(n=5)
    write_snapshot(tmp_path, ids)
    names = {p.name for p in (tmp_path / SNAPSHOT_DIR).iterdir()}
    assert {"rows.npy", "product.npy", "price.npy", "meta.json", "colour.npy"} <= names
    assert np.load(tmp_path / SNAPSHOT_DIR / "rows.npy", mmap_mode="r").tolist() == ids.tolist()


def test_owners_match_image_products_including_unknown_and_inactive(tmp_path):
    ids = catalogue()
    snap = snapshot(tmp_path, ids)
    asked = [*ids.tolist(), 999_999, -3]
    assert snap.owners(asked) == selectors.image_products(asked)


def test_allowed_ids_match_the_database_for_structural_filters(tmp_path):
    ids = catalogue()
    snap = snapshot(tmp_path, ids)
    rng = random.Random(1)
    checked = 0
    for filters in filter_cases(rng, 120):
        if not snap.serves(filters):
            with pytest.raises(ValueError, match="price and stock"):
                snap.allowed_image_ids(filters)
            continue
        expected = selectors.allowed_image_ids(filters=filters)
        got = snap.allowed_image_ids(filters)
        if expected is None:
            assert got is None
        else:
            assert got.tolist() == expected.tolist(), filters
        checked += 1
    assert checked > 10


def test_mask_matches_the_database_for_every_filter_while_fresh(tmp_path):
    ids = catalogue()
    snap = snapshot(tmp_path, ids)
    for filters in filter_cases(random.Random(2), 80):
        if filters.is_empty:
            continue
        expected = selectors.allowed_image_ids(filters=filters)
        assert snap.cols["rows"][snap.mask(filters)].tolist() == expected.tolist(), filters


def test_facets_match_the_database_over_candidate_lists(tmp_path):
    ids = catalogue()
    snap = snapshot(tmp_path, ids)
    pids = sorted(Product.objects.values_list("pk", flat=True))
    rng = random.Random(3)
    for filters in filter_cases(rng, 60):
        candidates = [*rng.sample(pids, rng.randrange(1, len(pids))), 987_654]
        expected = selectors.facet_counts(product_ids=candidates, filters=filters)
        assert snap.facet_counts(product_ids=candidates, filters=filters) == expected, filters


def test_store_facet_ties_order_by_name_like_the_database(tmp_path):
    a = StoreFactory(slug="zz", name="Alpha")
    b = StoreFactory(slug="aa", name="Beta")
    ids = [ProductImageFactory(product=ProductFactory(store=s)).pk for s in (b, a)]
    snap = snapshot(tmp_path, np.array(sorted(ids)))
    pids = list(Product.objects.values_list("pk", flat=True))
    facets = snap.facet_counts(product_ids=pids, filters=SearchFilters())
    assert facets["store"] == [("zz", "Alpha", 1), ("aa", "Beta", 1)]


def test_a_product_deactivated_after_the_build_is_caught_by_the_fresh_check(tmp_path):
    ids = catalogue(n=6)
    snap = snapshot(tmp_path, ids)
    owners = snap.owners(ids.tolist())
    gone = next(iter(owners.values()))[0]
    Product.objects.filter(pk=gone).update(is_active=False)
    assert gone in {p for p, _ in snap.owners(ids.tolist()).values()}  # as of the build
    shown = sorted({p for p, _ in owners.values()})
    assert fresh_product_ids(shown) == set(shown) - {gone}
    assert fresh_product_ids([]) == set()


def test_empty_version(tmp_path):
    snap = snapshot(tmp_path, np.zeros(0, dtype=np.int64))
    assert snap.owners([1, 2]) == {}
    assert snap.facet_counts(product_ids=[1], filters=SearchFilters())["brand"] == []
    assert snap.allowed_image_ids(SearchFilters(brands=("x",))).tolist() == []


def test_fresh_owners_equal_image_products_after_activity_changes(tmp_path):
    ids = catalogue(n=30)
    snap = snapshot(tmp_path, ids)
    asked = [*ids.tolist(), 424_242]
    owners = snap.owners(asked, as_of_build=False)
    products = sorted({p for p, _ in owners.values()})
    Product.objects.filter(pk__in=products[:3]).update(is_active=False)
    Product.objects.filter(pk__in=products[3:]).update(is_active=True)  # some were inactive
    assert snap.fresh_owners(asked) == selectors.image_products(asked)
    assert snap.owners(asked) != selectors.image_products(asked)  # the build-time answer


def test_facets_of_candidates_active_now_ignore_the_build_time_flag(tmp_path):
    ids = catalogue(n=40)
    snap = snapshot(tmp_path, ids)
    Product.objects.update(is_active=True)
    pids = sorted(Product.objects.values_list("pk", flat=True))
    for filters in filter_cases(random.Random(4), 30):
        expected = selectors.facet_counts(product_ids=pids, filters=filters)
        got = snap.facet_counts(product_ids=pids, filters=filters, active_now=True)
        assert got == expected, filters


def test_for_index_can_be_switched_off_and_loads_once_per_version(tmp_path, settings):
    from types import SimpleNamespace

    from search import snapshot as module

    ids = catalogue(n=3)
    write_snapshot(tmp_path, ids)
    index = SimpleNamespace(path=tmp_path)
    settings.MEEPO_SEARCH_SNAPSHOT = False
    assert module.for_index(index) is None
    settings.MEEPO_SEARCH_SNAPSHOT = True
    first = module.for_index(index)
    assert first is not None
    assert module.for_index(index) is first
    assert module.for_index(SimpleNamespace(path=tmp_path / "missing")) is None


def test_holds_says_whether_every_candidate_is_in_the_snapshot(tmp_path):
    ids = catalogue(n=4)
    snap = snapshot(tmp_path, ids)
    pids = list(Product.objects.values_list("pk", flat=True))
    assert snap.holds(pids)
    assert snap.holds([])
    late = ProductFactory()  # scraped after the build
    assert not snap.holds([*pids, late.pk])


def test_product_rows_from_a_snapshot_without_the_sorted_column(tmp_path):
    ids = catalogue(n=12)
    write_snapshot(tmp_path, ids)
    (tmp_path / SNAPSHOT_DIR / "product_sorted.npy").unlink()
    snap = Snapshot.load(tmp_path)
    pids = sorted(Product.objects.values_list("pk", flat=True))
    rows = snap.product_rows([*pids, 10**9])
    assert rows[-1] == -1
    assert snap.cols["product"][rows[:-1]].tolist() == pids
