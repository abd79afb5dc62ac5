"""Real `celery worker` processes on a real Redis: an embed batch is consumed, and the batch of a
worker killed with -9 is redelivered to another worker and finished, nothing embedded twice."""

import os
import signal

import pytest

from pipeline.distributed.tasks import embed_batch
from search.models import Embedding
from tests.distributed.conftest import wait_until
from tests.pipeline.test_embed import make_images

pytestmark = pytest.mark.django_db(transaction=True)


def test_worker_embeds_a_batch_with_the_tiny_model(start_worker, tiny_clip):
    ids = [image.asset_id for image in make_images(3)]
    start_worker("solo")

    result = embed_batch.delay(ids).get(timeout=120)

    assert result["embedded"] == 3
    assert sorted(Embedding.objects.values_list("asset_id", flat=True)) == sorted(ids)
    assert set(Embedding.objects.values_list("model_name", flat=True)) == {str(tiny_clip)}


def test_batch_of_a_worker_killed_with_9_is_finished_by_another_worker(start_worker):
    ids = [image.asset_id for image in make_images(6)]
    # Forward batches of 2, each committed, then a 5 s pause: time to kill it mid-task.
    doomed = start_worker("doomed", visibility=3, slow=5.0)
    pending = embed_batch.delay(ids)

    wait_until(lambda: Embedding.objects.count() >= 2, 120, "the first forward batch")
    os.killpg(doomed.pid, signal.SIGKILL)  # no warm shutdown, no requeue: the message is unacked
    doomed.wait()
    before = {e.asset_id: (e.pk, e.updated_at, bytes(e.vector)) for e in Embedding.objects.all()}
    assert 2 <= len(before) < 6

    start_worker("rescuer", visibility=3)
    wait_until(lambda: Embedding.objects.count() == 6, 120, "the rescuer to finish the batch")
    pending.get(timeout=60)

    rows = list(Embedding.objects.values_list("asset_id", "model_name"))
    assert sorted(rows) == sorted(set(rows))  # one row per asset and model
    assert sorted(asset for asset, _ in rows) == sorted(ids)
    for asset_id, (pk, updated_at, vector) in before.items():  # the dead worker's rows stand
        row = Embedding.objects.get(asset_id=asset_id)
        assert (row.pk, row.updated_at, bytes(row.vector)) == (pk, updated_at, vector)
