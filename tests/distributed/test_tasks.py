"""The distributed tasks run in this process: idempotency, the host lock, the builder lock, the
cycle's queueing and `pipeline_status`."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from catalog.models import CrawlRun, Product, ProductImage
from pipeline.distributed.cycle import current_cycle, start_cycle
from pipeline.distributed.locks import LockHeld, redis_lock
from pipeline.distributed.tasks import (
    build_and_publish,
    crawl_store,
    download_store_images,
    embed_batch,
    host_key,
)
from pipeline.lock import pipeline_lock
from pipeline.models import TaskFailure
from pipeline.scrape import add_store
from search.models import Embedding
from tests.pipeline.test_embed import make_images

pytestmark = pytest.mark.django_db(transaction=True)


def _rows(model, *fields):
    return sorted(model.objects.values_list(*fields))


def test_crawl_task_run_twice_writes_the_same_rows(broker, fast_crawl, make_shop):
    shop = make_shop("shopify", products=3)
    store = add_store(shop.base_url, crawl_delay=0.0)

    first = crawl_store(store.pk)
    products = _rows(Product, "pk", "external_id", "title", "price")
    images = _rows(ProductImage, "pk", "asset_id", "fetch_status")
    second = crawl_store(store.pk)

    assert first["status"] == second["status"] == CrawlRun.Status.SUCCEEDED
    assert len(products) == 3
    assert _rows(Product, "pk", "external_id", "title", "price") == products
    assert _rows(ProductImage, "pk", "asset_id", "fetch_status") == images
    assert download_store_images(store.pk)["summary"].startswith("images: 0 downloaded")


def test_embed_task_run_twice_writes_the_same_rows(broker, tiny_clip):
    ids = [image.asset_id for image in make_images(3)]

    first = embed_batch(ids)
    rows = _rows(Embedding, "pk", "asset_id", "model_name", "vector", "updated_at")
    second = embed_batch(ids)

    assert first["embedded"] == 3
    assert second["embedded"] == 0  # nothing left to do, no model work
    assert _rows(Embedding, "pk", "asset_id", "model_name", "vector", "updated_at") == rows


def test_host_lock_keeps_a_second_worker_off_the_store(broker, fast_crawl, make_shop):
    shop = make_shop("shopify", products=2)
    store = add_store(shop.base_url, crawl_delay=0.0)
    shop.clear_requests()

    # Another worker crawls another store on the same host: this one waits (a retry).
    with (
        redis_lock("crawl:" + host_key(store.base_url), label="store=999"),
        pytest.raises(LockHeld),
    ):
        crawl_store(store.pk)
    # A second delivery of this very crawl while the first still runs: dropped, not retried.
    with redis_lock("crawl:" + host_key(store.base_url), label=f"store={store.pk}"):
        assert crawl_store(store.pk)["status"] == "skipped"

    assert shop.requests == []
    assert not CrawlRun.objects.exists()


def test_crawl_task_marks_a_dead_workers_run_interrupted(broker, fast_crawl, make_shop):
    shop = make_shop("shopify", products=1)
    store = add_store(shop.base_url, crawl_delay=0.0)
    dead = CrawlRun.objects.create(
        store=store, status=CrawlRun.Status.RUNNING, started_at=timezone.now()
    )

    crawl_store(store.pk)

    dead.refresh_from_db()
    assert dead.status == CrawlRun.Status.INTERRUPTED


def test_one_builder_at_a_time(broker, tiny_clip, settings):
    embed_batch([image.asset_id for image in make_images(2)])
    index_dir = settings.MEEPO_DATA_DIR / "index"

    with redis_lock("builder", label="build"):  # a builder on another machine
        assert build_and_publish()["status"] == "skipped"
    with pipeline_lock():  # `manage.py pipeline` on this machine
        assert build_and_publish()["status"] == "skipped"
    assert not (index_dir / "current").exists()

    result = build_and_publish()
    assert result["status"] == "ok"
    assert result["index"] == "published"
    assert (index_dir / "current").exists()
    assert build_and_publish()["index"] == "nothing to do"


def test_enqueue_cycle_queues_one_crawl_per_store_and_refuses_a_second_cycle(
    broker, fast_crawl, make_shop, capsys
):
    for flavour in ("shopify", "woocommerce"):
        add_store(make_shop(flavour, products=1).base_url, crawl_delay=0.0)

    call_command("enqueue_cycle")
    assert "queued cycle" in capsys.readouterr().out
    with pytest.raises(CommandError) as again:
        call_command("enqueue_cycle")
    assert again.value.returncode == 75

    call_command("pipeline_status")
    out = capsys.readouterr().out
    assert "queues: crawl 2, embed 0, build 0" in out
    assert "stores)" in out  # the cycle in flight


def test_pipeline_status_lists_locks_and_failures(broker, capsys):
    TaskFailure.objects.create(
        task_name="pipeline.distributed.tasks.embed_batch",
        task_id="abc",
        error="ModelNotAvailable: no such model",
        worker="embed@gpu1",
    )
    with redis_lock("builder", label="build"):
        call_command("pipeline_status")
    out = capsys.readouterr().out
    assert "locks: 1 held" in out
    assert ":build:" in out
    assert "failures: 1 in the last 24 h" in out
    assert "embed@gpu1: ModelNotAvailable" in out


def test_a_task_that_fails_for_good_is_recorded(broker, settings, tiny_clip):
    settings.MEEPO_CLIP_MODEL = "/nonexistent/model"
    ids = [image.asset_id for image in make_images(1)]
    assert start_cycle(["shop"]) is not None

    result = embed_batch.apply(args=[ids], task_id="t-1")

    assert result.failed()
    failure = TaskFailure.objects.get(task_id="t-1")
    assert failure.task_name.endswith("embed_batch")
    assert "ModelNotAvailable" in failure.error
    # The cycle's chord will never reach its build: the next timer may start a new cycle.
    assert current_cycle() is None


def test_enqueue_cycle_without_a_broker_is_a_usage_error(settings):
    settings.MEEPO_BROKER_URL = ""
    with pytest.raises(CommandError) as error:
        call_command("enqueue_cycle")
    assert error.value.returncode == 2
