"""The whole chain on the demo shop (real HTTP on 127.0.0.1) with the tiny CLIP: the issue's
"done when" cases — fill and publish, idempotent re-run, new products, crashes mid-embed and
mid-publish recovered by the next run."""

import pytest

from catalog.models import ProductImage
from pipeline import embed as embed_module
from pipeline.indexing import publish
from pipeline.run import run_pipeline
from pipeline.scrape import add_store
from search import encoder as encoder_module
from search.index import get_index, published_dir
from search.models import Embedding

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def shop(fast_crawl, make_shop, tiny_clip, settings):
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0
    settings.MEEPO_EMBED_BATCH = 2
    shop = make_shop("shopify", products=6)
    add_store(shop.base_url, crawl_delay=0.0)
    return shop


def indexable_ids():
    return set(
        ProductImage.objects.filter(
            product__is_active=True, is_shared=False, asset__isnull=False
        ).values_list("pk", flat=True)
    )


def test_pipeline_fills_embeddings_and_publishes_then_reruns_do_nothing(shop, monkeypatch):
    first = run_pipeline()
    assert first.ok, first.summary()
    assert first.embed.embedded > 0
    assert first.index.status == "published"
    assert set(get_index().ids.tolist()) == indexable_ids()

    def no_model(*args, **kwargs):
        raise AssertionError("a second run must not load the model")

    monkeypatch.setattr(encoder_module, "get_encoder", no_model)
    second = run_pipeline()
    assert second.ok, second.summary()
    assert (second.embed.candidates, second.index.status) == (0, "nothing to do")
    assert published_dir().name == first.index.version


def test_new_products_add_exactly_their_images(shop):
    run_pipeline()
    before = indexable_ids()
    embeddings_before = Embedding.objects.count()
    shop.add_products(2)
    report = run_pipeline()
    new = indexable_ids() - before
    assert new
    assert report.index.mode == "incremental"
    assert (report.index.added, report.index.removed) == (len(new), 0)
    assert Embedding.objects.count() - embeddings_before == report.embed.embedded > 0
    assert set(get_index().ids.tolist()) == before | new


def test_crash_mid_embed_is_recovered_by_the_next_run(shop, monkeypatch):
    real_store = embed_module._store_batch
    calls = []

    def crash_on_second_batch(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed mid-embed")
        real_store(*args)

    monkeypatch.setattr(embed_module, "_store_batch", crash_on_second_batch)
    crashed = run_pipeline()
    assert crashed.failed_stages == ["embed"]
    assert Embedding.objects.count() == 2  # the first batch was committed
    monkeypatch.setattr(embed_module, "_store_batch", real_store)
    recovered = run_pipeline()
    assert recovered.ok, recovered.summary()
    assert set(get_index().ids.tolist()) == indexable_ids()


def test_crash_mid_publish_keeps_old_index_serving_and_next_run_recovers(shop, monkeypatch):
    first = run_pipeline()
    shop.add_products(1)

    def crash(*args):
        raise OSError("killed mid-publish")

    monkeypatch.setattr(publish, "swap_current", crash)
    crashed = run_pipeline()
    assert crashed.failed_stages == ["index"]
    assert published_dir().name == first.index.version
    assert get_index().version == first.index.version
    monkeypatch.undo()
    recovered = run_pipeline()
    assert recovered.ok, recovered.summary()
    assert recovered.index.status == "published"
    assert set(get_index().ids.tolist()) == indexable_ids()
