"""Distributed mode: the pipeline's stages as Celery tasks on any number of machines.

Off unless MEEPO_BROKER_URL=redis://host:6379/0; without it nothing here is imported and the
cron/systemd `manage.py pipeline` runs everything in one process, as before.

Every machine runs the same checkout with the same /etc/meepo/env: MEEPO_BROKER_URL, a shared
MEEPO_DATABASE_URL (PostgreSQL), and MEEPO_MEDIA_ROOT on a directory mounted at the same path on
every machine (thumbnails are written once, content-addressed and atomically renamed, so no
locks are needed on the mount). Start workers from the checkout:

    # crawl machines: I/O-bound, threads; one crawl per host across all machines (Redis lock)
    .venv/bin/celery -A meepo worker -Q crawl --pool threads --concurrency 8 -n crawl@%h
    # embed machines: one process (torch uses the cores); MEEPO_CLIP_DEVICE=cuda on a GPU box
    .venv/bin/celery -A meepo worker -Q embed --concurrency 1 -n embed@%h
    # the builder machine (its nginx serves the index directory to the web nodes)
    .venv/bin/celery -A meepo worker -Q build --concurrency 1 -n build@%h

(or `systemctl enable --now meepo-worker@crawl meepo-worker@embed meepo-worker@build`), then:

    manage.py enqueue_cycle        # queue crawl -> embed -> publish (the timer does this)
    manage.py pipeline_status      # queue depths, cycle in flight, locks, failures

Modules: `tasks` (the Celery tasks), `cycle` (the canvas of one cycle), `embedding` (one embed
batch), `locks` (Redis locks with token, expiry and renewal), `status` (queue depths and locks).
"""
