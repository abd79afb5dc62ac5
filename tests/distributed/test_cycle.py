"""One whole cycle through a real worker: `enqueue_cycle` -> crawls -> embed batches -> publish."""

import json

import pytest
from django.conf import settings
from django.core.management import call_command

from catalog.models import CrawlRun, Product
from pipeline.distributed.cycle import current_cycle
from pipeline.models import TaskFailure
from pipeline.scrape import add_store
from search.models import Embedding
from tests.distributed.conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_enqueued_cycle_crawls_embeds_and_publishes_once(start_worker, fast_crawl, make_shop):
    for flavour in ("shopify", "woocommerce"):
        add_store(make_shop(flavour, products=3).base_url, crawl_delay=0.0)
    start_worker(
        "all",
        queues="crawl,embed,build",
        MEEPO_ALLOWED_LOOPBACK="127.0.0.1:*",
        MEEPO_CRAWL_DELAY="0",
        MEEPO_API_DELAY="0",
        MEEPO_EMBED_TASK_BATCH="4",  # several embed tasks in the chord
    )

    call_command("enqueue_cycle")
    wait_until(lambda: current_cycle() is None, 240, "the cycle's build to finish", step=0.5)

    assert Product.objects.count() == 6
    assert set(CrawlRun.objects.values_list("status", flat=True)) == {CrawlRun.Status.SUCCEEDED}
    embedded = Embedding.objects.count()
    assert embedded >= 6
    manifest = json.loads(
        (settings.MEEPO_DATA_DIR / "index" / "current" / "manifest.json").read_text()
    )
    assert manifest["count"] == embedded
    assert not TaskFailure.objects.exists()
