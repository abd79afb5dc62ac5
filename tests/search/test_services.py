"""The search service over a real published index (built by pipeline.indexing.build_index)."""

import io

import numpy as np
import pytest
from django.conf import settings
from PIL import Image

from catalog.models import Product
from pipeline.embed import embed_images
from pipeline.indexing import build_index
from search import services
from search.exceptions import IndexNotReady
from search.index import reset_index_cache
from search.models import Embedding
from search.selectors import SearchFilters
from tests.factories import ImageAssetFactory, ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db
DIM = 16


def unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def plant(product, vector, *, position=0, asset=None):
    """A product image whose stored embedding is `vector` (for the configured model)."""
    image = ProductImageFactory(
        product=product, position=position, **({"asset": asset} if asset else {})
    )
    Embedding.objects.get_or_create(
        asset=image.asset,
        model_name=settings.MEEPO_CLIP_MODEL,
        defaults={"dim": DIM, "vector": unit(vector).astype("<f4").tobytes()},
    )
    return image


def publish():
    report = build_index(force=True)
    assert report.status == "published"
    reset_index_cache()


def axis(i, noise=0.0, seed=0):
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    if noise:
        v += np.random.default_rng(seed).normal(0, noise, DIM).astype(np.float32)
    return v


def test_similar_products_rank_by_stored_vectors_and_exclude_itself():
    store = StoreFactory()
    query = ProductFactory(store=store, title="Query lamp")
    plant(query, axis(0))
    near = ProductFactory(store=store, title="Near")
    plant(near, axis(0, 0.1, 1))
    far = ProductFactory(store=store, title="Far")
    plant(far, axis(5))
    publish()
    page = services.find_similar_products(product=query, limit=5)
    ids = [h.product.pk for h in page.hits]
    assert ids[0] == near.pk
    assert query.pk not in ids
    assert page.hits[0].signals == ["visual"]
    assert page.hits[0].score == page.hits[0].visual_score
    assert page.hits[0].visual_score > page.hits[-1].visual_score


def test_selective_filter_still_fills_the_page():
    big, small = StoreFactory(slug="big"), StoreFactory(slug="small")
    query = ProductFactory(store=big)
    plant(query, axis(0))
    for n in range(60):  # the best matches are all in the big store
        plant(ProductFactory(store=big), axis(0, 0.2, n))
    for n in range(10):  # the small store's products are far from the query
        plant(ProductFactory(store=small), axis(7, 0.2, 100 + n))
    publish()
    page = services.find_similar_products(
        product=query, filters=SearchFilters(stores=("small",)), limit=10
    )
    assert len(page.hits) == 10
    assert {h.product.store.slug for h in page.hits} == {"small"}


def test_images_of_one_product_collapse_to_its_best_image():
    store = StoreFactory()
    query = ProductFactory(store=store)
    plant(query, axis(0))
    many = ProductFactory(store=store, title="Five photos")
    for pos in range(5):
        plant(many, axis(0, 0.05, pos), position=pos)
    other = ProductFactory(store=store)
    plant(other, axis(0, 0.5, 99))
    publish()
    page = services.find_similar_products(product=query, limit=10)
    ids = [h.product.pk for h in page.hits]
    assert ids.count(many.pk) == 1
    assert other.pk in ids


def test_same_photo_on_two_products_shows_once():
    store = StoreFactory()
    query = ProductFactory(store=store)
    plant(query, axis(0))
    first = ProductFactory(store=store)
    shared = plant(first, axis(0, 0.1, 3)).asset
    second = ProductFactory(store=store)
    ProductImageFactory(product=second, asset=shared)
    publish()
    page = services.find_similar_products(product=query, limit=10)
    assert len([h for h in page.hits if h.image.asset_id == shared.pk]) == 1


def test_deactivated_product_drops_out_before_rebuild():
    store = StoreFactory()
    query = ProductFactory(store=store)
    plant(query, axis(0))
    gone = ProductFactory(store=store)
    plant(gone, axis(0, 0.1, 2))
    publish()
    Product.objects.filter(pk=gone.pk).update(is_active=False)
    page = services.find_similar_products(product=query, limit=10)
    assert gone.pk not in [h.product.pk for h in page.hits]


def test_similar_without_index_raises_or_falls_back_to_keywords():
    store = StoreFactory()
    lamp = ProductFactory(store=store, title="Brass desk lamp")
    other = ProductFactory(store=store, title="Brass floor lamp")
    with pytest.raises(IndexNotReady):
        services.find_similar_products(product=lamp)
    page = services.find_similar_products(product=lamp, fallback_to_keywords=True)
    assert page.visual_status == "not_ready"
    assert [h.product.pk for h in page.hits] == [other.pk]


def test_text_search_without_index_is_keyword_only():
    store = StoreFactory()
    ProductFactory(store=store, title="Red kettle")
    page = services.search_products(query="kettle")
    assert page.visual_status == "not_ready"
    assert page.notice
    assert [h.signals for h in page.hits] == [["keyword"]]


def test_fusion_puts_exact_then_both_signals_first():
    visual = [
        services.Candidate(1, 11, visual_score=0.9, visual_rank=0),
        services.Candidate(2, 12, visual_score=0.8, visual_rank=1),
    ]
    fused = services.fuse(visual, [(2, -5.0), (3, -4.0)], [3])
    assert [c.product_id for c in fused] == [3, 2, 1]
    assert fused[1].visual_score == 0.8
    assert fused[1].keyword_score == 5.0


def jpeg(color):
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.slow
def test_minus_words_exclude_products_from_the_visual_list_too(tiny_clip, settings):
    settings.MEEPO_RELEVANCE_FLOOR = False  # the tiny random CLIP's scores mean nothing
    ceramic = ProductFactory(title="Ceramic mug")
    enamel = ProductFactory(title="Enamel mug")
    cup = ProductFactory(title="Plain cup", description="Made of ceramics")
    for i, product in enumerate((ceramic, enamel, cup)):
        plant(product, axis(i))
    publish()
    everything = {h.product.pk for h in services.search_products(query="mug").hits}
    assert {ceramic.pk, cup.pk} <= everything  # the cup only looks like one: visual match
    page = services.search_products(query="mug -ceramic")
    assert page.query == "mug -ceramic"  # shown as typed
    assert {h.product.pk for h in page.hits} == {enamel.pk}


def test_minus_words_apply_to_the_keyword_only_fallback_too():
    ceramic = ProductFactory(title="Ceramic mug")
    enamel = ProductFactory(title="Enamel cup")
    # No index: keyword only; no product has both words, so any word counts, minus the excluded.
    page = services.search_products(query="mug cup -ceramic")
    assert page.visual_status == "not_ready"
    assert [h.product.pk for h in page.hits] == [enamel.pk]
    assert ceramic.pk in {h.product.pk for h in services.search_products(query="mug cup").hits}


def test_text_and_photo_search_through_tiny_clip_and_real_index(tiny_clip, settings):
    settings.MEEPO_RELEVANCE_FLOOR = False  # the tiny random CLIP's scores mean nothing
    store = StoreFactory()
    products = {}
    for color in ("red", "green", "blue", "yellow"):
        product = ProductFactory(store=store, title=f"{color.title()} cushion")
        asset = ImageAssetFactory(thumbnail__color=color, thumbnail__width=64, thumbnail__height=64)
        ProductImageFactory(product=product, asset=asset)
        products[color] = product
    assert embed_images().embedded == 4
    publish()
    text = services.search_products(query="green cushion")
    assert text.visual_status == "ok"
    assert {h.product.pk for h in text.hits} == {p.pk for p in products.values()}
    assert text.hits[0].product.pk == products["green"].pk  # visual + keyword
    assert set(text.hits[0].signals) == {"exact", "visual", "keyword"}
    assert text.timings["encode"] > 0
    again = services.search_products(query="green cushion")
    assert again.cached
    assert "encode" not in again.timings
    photo = services.search_by_image(image=Image.open(io.BytesIO(jpeg("blue"))).convert("RGB"))
    assert photo.hits[0].product.pk == products["blue"].pk
    assert photo.hits[0].visual_score > 0.99
