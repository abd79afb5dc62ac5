"""Meepo project package: settings, URLs, WSGI, and the Celery app of distributed mode.

The Celery app (meepo/celery.py) is not imported here: web workers and the one-machine cron
pipeline never pay for loading Celery. `celery -A meepo` finds `meepo.celery.app` by itself, and
the tasks bind to it explicitly (pipeline/distributed/tasks.py).
"""
