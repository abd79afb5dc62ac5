"""A real Celery worker for the distributed tests, on the pytest session's test database.

    python tests/distributed/worker.py TEST_DB_NAME NAME@%h QUEUES

The environment carries MEEPO_BROKER_URL, MEEPO_TASK_VISIBILITY_TIMEOUT, MEEPO_CLIP_MODEL and the
data and media directories. MEEPO_TEST_SLOW_BATCH=<seconds> pauses after every committed forward
batch, so a test can kill the worker (-9) in the middle of an embed task.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ["DJANGO_SETTINGS_MODULE"] = "meepo.settings"

from django.conf import settings

settings.DATABASES["default"]["NAME"] = sys.argv[1]

import django  # noqa: E402

django.setup()

slow = float(os.environ.get("MEEPO_TEST_SLOW_BATCH") or 0)
if slow:
    from pipeline.distributed import embedding

    stored = embedding.store_batch

    def store_then_wait(*args, **kwargs):
        stored(*args, **kwargs)
        time.sleep(slow)

    embedding.store_batch = store_then_wait

from meepo.celery import app  # noqa: E402

app.worker_main(
    ["worker", "-n", sys.argv[2], "-Q", sys.argv[3], "--pool", "solo", "--without-gossip",
     "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"]
)  # fmt: skip
