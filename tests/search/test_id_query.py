"""The page's reads by id (search.id_query.IdQuery: compiled once, widened per call) return
what the ORM querysets they replace returned: the same rows with the ORM's converted values, the
same model instances (deferred columns, cached store/asset/product), in the same order."""

from decimal import Decimal

import numpy as np
import pytest
from django.db import connection
from django.db.models import Prefetch
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext

from catalog.models import Product, ProductImage, ProductVariant
from search import selectors
from search.id_query import IdQuery
from tests.factories import ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    stores = [StoreFactory(name="Zed & Co"), StoreFactory(name="Alpha")]
    made = []
    for i in range(12):
        product = ProductFactory(
            store=stores[i % 2],
            title=f'Lamp {11 - i} "quoted"',
            price=[Decimal("12.5"), None, Decimal("0.125")][i % 3],
            list_price=Decimal("20") if i % 4 == 0 else None,
            currency=["EUR", "JPY", "KWD"][i % 3],
            availability=["in_stock", "out_of_stock"][i % 2],
            gtin=f"{i:013d}" if i % 2 else "",
        )
        for position in [2, 0, 1] if i % 3 == 0 else [0] if i % 3 == 1 else []:
            ProductImageFactory(product=product, position=position)
        if i % 5 == 0:
            for n in (1, 0):
                ProductVariant.objects.create(
                    product=product, external_id=f"v{i}-{n}", position=n,
                    options={"colour": "Blue", "size": ["S", "M"][n]}, price=Decimal("9.99"),
                )  # fmt: skip
        made.append(product)
    return made


def orm_lean(product_ids):
    """hydrate_products(lean=True) as the ORM wrote it before IdQuery."""
    images = (
        ProductImage.objects.filter(asset__isnull=False)
        .select_related("asset")
        .only(*selectors.HIT_IMAGE_FIELDS)
        .order_by("position", "pk")
    )
    products = (
        Product.objects.filter(pk__in=product_ids)
        .select_related("store")
        .only(*selectors.HIT_PRODUCT_FIELDS)
        .prefetch_related(Prefetch("images", queryset=images, to_attr="ready_images"))
    )
    return {p.pk: p for p in products}


def state(obj) -> dict:
    """An instance's loaded columns, deferred columns and cached relations, recursively."""
    loaded = {
        k: v for k, v in obj.__dict__.items() if not k.startswith("_") and k != "ready_images"
    }
    cached = {
        name: (rel.pk if name == "product" else state(rel))
        for name, rel in obj._state.fields_cache.items()
    }
    images = [state(i) for i in getattr(obj, "ready_images", [])]
    return {
        "type": type(obj),
        "loaded": loaded,
        "deferred": obj.get_deferred_fields(),
        "db": obj._state.db,
        "adding": obj._state.adding,
        "cached": cached,
        "images": images,
    }


def test_lean_hydration_makes_the_instances_the_orm_made(shop):
    ids = [p.pk for p in reversed(shop)] + [10**9]
    ours, theirs = selectors.hydrate_products(ids, lean=True), orm_lean(ids)
    assert sorted(ours) == sorted(
        theirs
    )  # in no particular order (pages.hydrate_hits: the window's)
    assert {pk: state(p) for pk, p in ours.items()} == {pk: state(p) for pk, p in theirs.items()}
    some = next(p for p in ours.values() if len(p.ready_images) == 3)
    assert [i.position for i in some.ready_images] == [0, 1, 2]
    assert some.ready_images[0].product is some
    assert some.store.name
    assert some.ready_images[0].asset.thumbnail.url


def test_lean_hydration_reads_one_query_and_no_deferred_column(shop):
    ids = [p.pk for p in shop]
    with CaptureQueriesContext(connection) as queries:
        found = selectors.hydrate_products(ids, lean=True)
        for p in found.values():
            _ = (p.title, p.store.slug, p.price, [i.asset.width for i in p.ready_images])
    assert len(queries) == 1


def test_candidate_rows_are_the_orms_values(shop):
    ids = [p.pk for p in shop]
    orm = Product.objects.filter(pk__in=ids).values_list(
        "pk", "gtin", "availability", "price", "currency", "first_seen_at", "is_active"
    )
    rows = selectors.candidate_rows(ids)
    assert {pk: (g, a == "in_stock", *rest) for pk, g, a, *rest in orm} == {
        pk: tuple(row) for pk, row in rows.items()
    }
    assert any(isinstance(r.price, Decimal) for r in rows.values())
    assert all(r.first_seen_at.tzinfo is not None for r in rows.values())
    for query in (selectors._candidate_rows, selectors._variants):
        query.rows(ids)
        assert query._compiled[query.db][0] is not None  # compiled and widened on this backend


def test_variants_are_the_orms_instances(shop):
    ids = [p.pk for p in shop]
    found = selectors.variants_of(ids)
    for pk in ids:
        orm = list(ProductVariant.objects.filter(product_id=pk).order_by("position", "pk"))
        assert [state(v) for v in found[pk]] == [state(v) for v in orm]
    assert sum(len(v) for v in found.values()) == 6
    assert found[shop[0].pk][0].options == {"colour": "Blue", "size": "S"}


def test_ids_may_repeat_and_be_numpy_integers(shop):
    ids = np.array([shop[0].pk, shop[0].pk, shop[3].pk], dtype=np.int64)
    assert set(selectors.candidate_rows(list(ids))) == {shop[0].pk, shop[3].pk}
    assert set(selectors.hydrate_products(list(ids), lean=True)) == {shop[0].pk, shop[3].pk}
    assert selectors.candidate_rows([]) == {}


def test_a_query_it_cannot_widen_is_left_to_the_orm(shop):
    query = IdQuery(
        lambda ids: Product.objects.filter(pk__in=ids, title__startswith="Lamp").values_list("pk")
    )
    assert sorted(r[0] for r in query.rows([p.pk for p in shop[:3]])) == sorted(
        p.pk for p in shop[:3]
    )
    assert query._compiled[query.db] == (None, None)


def test_a_post_init_receiver_still_sees_every_instance(shop):
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=Product)
    try:
        ids = [p.pk for p in shop]
        found = selectors.hydrate_products(ids, lean=True)
    finally:
        post_init.disconnect(receiver, sender=Product)
    assert sorted(p.pk for p in seen) == sorted(ids)
    assert {pk: state(p) for pk, p in found.items()} == {
        pk: state(p) for pk, p in orm_lean(ids).items()
    }


def test_candidate_rows_without_dates_are_the_same_rows_undated(shop):
    ids = [p.pk for p in shop]
    dated = selectors.candidate_rows(ids)
    undated = selectors.candidate_rows(ids, first_seen=False)
    assert undated == {pk: row._replace(first_seen_at=None) for pk, row in dated.items()}
    assert all(row.first_seen_at is not None for row in dated.values())
