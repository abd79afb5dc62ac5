"""The Celery app of distributed mode (MEEPO_BROKER_URL set; see pipeline/distributed).

Configured from Django settings (the CELERY_* names in meepo/settings.py, derived from MEEPO_*),
tasks found by autodiscovery in `pipeline.distributed.tasks`. Nothing connects to Redis when
this module is imported; one machine without a broker never touches it.

Start a worker:  .venv/bin/celery -A meepo worker -Q crawl,embed,build -n w1@%h
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meepo.settings")

app = Celery("meepo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["pipeline.distributed"])
