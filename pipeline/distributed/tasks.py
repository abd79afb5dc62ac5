"""Celery tasks of distributed mode: the pipeline's stages, one unit of work per task.

Start workers from the checkout, with the same environment as the web service (MEEPO_BROKER_URL,
MEEPO_DATABASE_URL, MEEPO_MEDIA_ROOT on the shared mount; deploy/systemd/meepo-worker@.service):

    .venv/bin/celery -A meepo worker -Q crawl --pool threads --concurrency 8 -n crawl@%h
    .venv/bin/celery -A meepo worker -Q embed --concurrency 1 -n embed@%h
    .venv/bin/celery -A meepo worker -Q build --concurrency 1 -n build@%h   # the builder only

then `manage.py enqueue_cycle` queues a cycle and `manage.py pipeline_status` shows it.

Tasks (queue): `crawl_store` and `download_store_images` (crawl), `plan_embeds` and
`embed_batch` (embed), `build_and_publish` (build). Guarantees:
- At least once: acks_late + reject_on_worker_lost + the Redis visibility timeout
  (MEEPO_TASK_VISIBILITY_TIMEOUT) hand the task of a dead worker to another one.
- Idempotent, so a second delivery is harmless: a crawl upserts on (store, platform id); an embed
  batch skips assets that have a vector and upserts on (asset, model); a build with nothing new
  says "nothing to do".
- One crawl per host across machines (Redis lock `crawl:<host:port>`), one request at a time per
  host (the gate's Redis lock), one builder (Redis lock `builder` plus the pipeline file lock).
- Transient infrastructure errors (database, Redis) are retried with exponential back-off and
  jitter; a task that still fails is recorded in pipeline.models.TaskFailure.
"""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import asdict
from urllib.parse import urlsplit

from celery import Task
from django.db import InterfaceError, OperationalError
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from catalog.models import CrawlRun, Store
from meepo.celery import app
from pipeline.distributed.locks import LockHeld, redis_lock, token_label
from pipeline.exceptions import PipelineLocked

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)
RETRY = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
}
# A store whose host another worker is crawling (another store on it) waits 15 s, 30 s, … up to
# 10 min between tries, about 3 hours in all, then is left for the next cycle.
HOST_WAIT_RETRIES = 24
CRAWL_LOCK_TTL = 120.0
BUILD_LOCK_TTL = 120.0


class MeepoTask(Task):
    """Records a task that failed for good (after its retries) in TaskFailure, and ends the cycle
    in flight: a chord whose member failed never runs its build, and the next timer must not
    wait a day for the cycle's mark to expire."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        from pipeline.distributed.cycle import abandon_cycle

        self._record(exc, task_id, args, kwargs)
        try:
            abandon_cycle(reason=f"task {self.name} {task_id} failed")
        except RedisError:
            logger.exception("could not clear the cycle mark after task %s failed", task_id)

    def _record(self, exc, task_id, args, kwargs) -> None:
        from pipeline.models import TaskFailure

        try:
            TaskFailure.objects.update_or_create(
                task_id=task_id,
                defaults={
                    "task_name": self.name,
                    "arguments": json.dumps({"args": args, "kwargs": kwargs}, default=str)[:2000],
                    "error": f"{type(exc).__name__}: {exc}"[:2000],
                    "worker": self.request.hostname or socket.gethostname(),
                    "retries": self.request.retries,
                },
            )
        except Exception:  # the database may be what failed; the worker log has the task anyway
            logger.exception("could not record the failure of task %s", task_id)


def host_key(url: str) -> str:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    return f"{(parts.hostname or '').lower()}:{port}"


def _interrupt_dead_runs(store: Store) -> int:
    """Runs of this store still "running" while we hold its host lock died with their worker."""
    now = timezone.now()
    return CrawlRun.objects.filter(store=store, status=CrawlRun.Status.RUNNING).update(
        status=CrawlRun.Status.INTERRUPTED,
        finished_at=now,
        errors=[{"url": "", "reason": "the worker ended before the run finished"}],
        updated_at=now,
    )


def _on_store_host(task: Task, store_id: int, work) -> dict:
    """Run `work(store)` holding the store's host lock; wait politely for a busy host."""
    store = Store.objects.filter(pk=store_id).first()
    if store is None:
        return {"store": store_id, "status": "gone"}
    label = f"store={store.pk}"
    try:
        with redis_lock(
            "crawl:" + host_key(store.base_url), ttl=CRAWL_LOCK_TTL, blocking=False, label=label
        ):
            return {"store": store.slug, **work(store)}
    except LockHeld as held:
        if token_label(held.holder) == label:  # a second delivery of a crawl still running
            return {"store": store.slug, "status": "skipped", "message": str(held)}
        if task.request.retries >= HOST_WAIT_RETRIES:
            return {"store": store.slug, "status": "skipped", "message": f"host busy: {held}"}
        countdown = min(600, 15 * 2**task.request.retries)
        raise task.retry(countdown=countdown, exc=held, max_retries=HOST_WAIT_RETRIES) from None


@app.task(bind=True, base=MeepoTask, **RETRY)
def crawl_store(self, store_id: int, limit: int | None = None, force: bool = False) -> dict:
    """Crawl one store (its products and their images), alone on its host across machines."""
    from pipeline.scrape import scrape_store

    def work(store: Store) -> dict:
        _interrupt_dead_runs(store)
        report = scrape_store(store, limit=limit, force=force)
        return {"status": report.status, "summary": report.summary()}

    return _on_store_host(self, store_id, work)


@app.task(bind=True, base=MeepoTask, **RETRY)
def download_store_images(self, store_id: int) -> dict:
    """Fetch a store's images that are still due (a crawl fetches most itself)."""
    from pipeline.images import download_images

    def work(store: Store) -> dict:
        report = download_images(store_slug=store.slug)
        return {"status": "ok", "summary": report.summary()}

    return _on_store_host(self, store_id, work)


@app.task(bind=True, base=MeepoTask, **RETRY)
def embed_batch(self, asset_ids: list[int]) -> dict:
    """Embed these assets (those still without a vector for the current model)."""
    from pipeline.distributed.embedding import embed_assets

    report = embed_assets(asset_ids)
    return {**asdict(report), "summary": report.summary()}


@app.task(bind=True, base=MeepoTask, **RETRY)
def plan_embeds(self, cycle_id: str | None = None) -> dict:
    """Split what needs a vector into embed_batch tasks, then one build_and_publish after them."""
    from celery import chord, group

    from pipeline.distributed.cycle import embed_chunks

    chunks = embed_chunks()
    build = build_and_publish.si(cycle_id=cycle_id)
    if chunks:
        chord(group(embed_batch.si(chunk) for chunk in chunks), build).delay()
    else:
        build.delay()
    return {"batches": len(chunks), "assets": sum(map(len, chunks))}


@app.task(bind=True, base=MeepoTask, **RETRY)
def build_and_publish(self, cycle_id: str | None = None, force: bool = False) -> dict:
    """Label attributes and build + publish the index: one builder at a time, on this machine."""
    from pipeline.attributes import assign_attributes
    from pipeline.distributed.cycle import end_cycle
    from pipeline.lock import pipeline_lock
    from pipeline.run import PipelineReport, _stage

    report = PipelineReport()
    try:
        with (
            redis_lock("builder", ttl=BUILD_LOCK_TTL, blocking=False, label="build"),
            pipeline_lock(),
        ):
            from pipeline.indexing import build_index

            _stage(report, "attributes", assign_attributes)
            _stage(report, "index", build_index, force=force)
    except PipelineLocked as exc:
        return {"status": "skipped", "message": str(exc)}
    finally:
        end_cycle(cycle_id)
    return {
        "status": "ok" if report.ok else "failed",
        "index": getattr(report.index, "status", None),
        "summary": report.summary(),
    }
