"""One spelling per rule: "indexable image", the Embedding codec and SearchFilters' two renderings,
each checked against its twin (raw SQL kept for speed)."""

from decimal import Decimal

import numpy as np
import pytest
from django.db import connection

from catalog.models import Product, ProductAttributes, ProductImage
from pipeline.embed import pending_assets
from pipeline.indexing.catalogue import eligible_images
from search.models import Embedding
from search.selectors import SearchFilters, allowed_image_ids
from tests.factories import ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    """Images on each side of every rule: inactive, shared, not downloaded, other store, price,
    stock, brand, category, attributes, with and without a vector for model "m"."""
    shops = [StoreFactory(slug="north"), StoreFactory(slug="south")]
    rng = np.random.default_rng(0)
    images = []
    for n in range(40):
        product = ProductFactory(
            store=shops[n % 2],
            brand=["Acme", "Zed", ""][n % 3],
            category=["shoes", "bags"][n % 2 if n % 5 else 0],
            price=Decimal(f"{10 + 7 * n}.{n % 100:02d}"),
            availability=[Product.Availability.IN_STOCK, Product.Availability.OUT_OF_STOCK][
                n % 4 == 3
            ],
            is_active=n % 7 != 6,
        )
        if n % 3 == 0:
            ProductAttributes.objects.create(
                product=product, colour=["navy", "red"][n % 2], pattern="striped", model_name="m"
            )
        image = ProductImageFactory(product=product, is_shared=n % 9 == 8)
        if n % 11 == 10:
            image.asset = None
            image.save()
        elif n % 4 != 1:
            Embedding.objects.create(
                asset=image.asset, model_name="m", dim=4, vector=Embedding.pack(rng.normal(size=4))
            )
        images.append(image)
    return images


def expected(images, keep):
    return sorted(
        i.pk
        for i in images
        if i.product.is_active and not i.is_shared and i.asset_id is not None and keep(i)
    )


FILTERS = [
    SearchFilters(stores=("north",)),
    SearchFilters(brands=("Acme", "Zed")),
    SearchFilters(categories=("bags",)),
    SearchFilters(min_price=Decimal("100.10"), max_price=Decimal("200.25")),
    SearchFilters(min_price=Decimal("59.07")),  # product 7 costs exactly this: it stays
    SearchFilters(in_stock=True),
    SearchFilters(attributes=(("colour", ("navy",)), ("pattern", ("striped",)))),
    SearchFilters(stores=("south",), in_stock=True, max_price=Decimal("250")),
]


def test_indexable_is_active_downloaded_unshared(catalogue):
    got = sorted(ProductImage.objects.indexable().values_list("pk", flat=True))
    assert got == expected(catalogue, lambda i: True)
    assert 0 < len(got) < len(catalogue)


def test_indexable_for_a_model_needs_its_vector(catalogue):
    with_vector = set(Embedding.objects.filter(model_name="m").values_list("asset_id", flat=True))
    got = sorted(ProductImage.objects.indexable(model="m").values_list("pk", flat=True))
    assert got == expected(catalogue, lambda i: i.asset_id in with_vector)
    assert sorted(eligible_images("m").values_list("pk", flat=True)) == got
    assert not ProductImage.objects.indexable(model="other").exists()


def test_pending_assets_are_the_indexable_images_assets(catalogue):
    indexable_assets = set(ProductImage.objects.indexable().values_list("asset_id", flat=True))
    assert set(pending_assets("m", force=True).values_list("pk", flat=True)) == indexable_assets
    missing = set(pending_assets("m").values_list("pk", flat=True))
    done = set(Embedding.objects.values_list("asset_id", flat=True))
    assert missing == indexable_assets - done


@pytest.mark.parametrize("filters", FILTERS, ids=range(len(FILTERS)))
def test_allowed_image_ids_sql_matches_the_indexable_queryset(catalogue, filters):
    orm = ProductImage.objects.indexable().filter(product__in=filters.queryset())
    assert allowed_image_ids(filters=filters).tolist() == sorted(orm.values_list("pk", flat=True))


@pytest.mark.parametrize("filters", FILTERS, ids=range(len(FILTERS)))
def test_search_filters_sql_matches_queryset(catalogue, filters):
    where, params = filters.sql("p")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT p.id FROM catalog_product p WHERE {where}", params)
        by_sql = sorted(row[0] for row in cursor.fetchall())
    by_orm = sorted(filters.queryset().values_list("pk", flat=True))
    assert by_sql == by_orm
    assert by_orm  # every case keeps some products, so agreement is not vacuous


def test_embedding_codec_is_little_endian_float32():
    vector = np.array([1.5, -2.0, 0.25], dtype=">f8")  # any dtype and byte order in
    blob = Embedding.pack(vector)
    assert blob == np.array([1.5, -2.0, 0.25], dtype="<f4").tobytes()
    assert Embedding.unpack(blob).tolist() == [1.5, -2.0, 0.25]
    assert Embedding(vector=blob, dim=3).as_array().dtype == np.dtype("<f4")
    with pytest.raises(ValueError, match="buffer is smaller"):
        Embedding.unpack(blob, 4)
