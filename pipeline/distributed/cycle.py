"""One pipeline cycle on the workers: crawl every store, embed what is new, publish one index.

`enqueue_cycle` queues, as one Celery canvas:

    chord([crawl_store(s) | download_store_images(s) for each active store],   queue crawl
          plan_embeds)                                                         queue embed
    plan_embeds -> chord([embed_batch(ids) for each chunk], build_and_publish)  queues embed, build

`plan_embeds` lists the pending assets only after every crawl has finished, so the batches cover
what the crawls brought. The chords' counters live in the Redis result backend; every header
task returns normally for a store or image that fails (it is reported, not raised), so one bad
store never holds the publish back.

Only one cycle is in flight at a time: `meepo:cycle` is set with NX and an expiry
(MEEPO_TASK_VISIBILITY_TIMEOUT x 12, a day by default) when a cycle is queued and deleted by its
build; a timer that fires while a cycle still runs enqueues nothing (like `flock -n` for cron).
Whatever a lost or failed cycle left undone, the next one picks up: every stage is idempotent.

`plan_embeds` holds the pending ids in memory (about 40 MB per million assets): fine for a nightly
cycle's new images; for a first backfill of tens of millions raise MEEPO_EMBED_TASK_BATCH.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from catalog import selectors
from pipeline.distributed.locks import redis_client
from pipeline.embed import pending_assets

logger = logging.getLogger(__name__)

CYCLE_KEY = "meepo:cycle"


@dataclass
class CycleReport:
    cycle_id: str | None = None
    stores: list[str] = field(default_factory=list)
    in_flight: dict | None = None  # the cycle that was already running (nothing queued)
    dry_run: bool = False

    def summary(self) -> str:
        if self.in_flight:
            return (
                f"cycle {self.in_flight.get('id')} (queued {self.in_flight.get('queued_at')}) "
                "is still running: nothing queued"
            )
        verb = "would queue" if self.dry_run else f"queued cycle {self.cycle_id}:"
        return f"{verb} {len(self.stores)} store crawls, then embed batches and one index build"


def embed_task_size() -> int:
    return max(1, settings.MEEPO_EMBED_TASK_BATCH)


def embed_chunks() -> list[list[int]]:
    """The assets that still need a vector for the current model, in task-sized chunks."""
    ids = list(pending_assets(settings.MEEPO_CLIP_MODEL).values_list("pk", flat=True))
    size = embed_task_size()
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def current_cycle() -> dict | None:
    raw = redis_client().get(CYCLE_KEY)
    return json.loads(raw) if raw else None


def start_cycle(stores: list[str]) -> str | None:
    """Mark a cycle as in flight; None when another one already is."""
    cycle_id = uuid.uuid4().hex[:12]
    value = json.dumps({"id": cycle_id, "queued_at": timezone.now().isoformat(), "stores": stores})
    ttl = settings.MEEPO_TASK_VISIBILITY_TIMEOUT * 12
    return cycle_id if redis_client().set(CYCLE_KEY, value, nx=True, ex=ttl) else None


def end_cycle(cycle_id: str | None) -> None:
    """Clear the in-flight mark if it is still this cycle's."""
    if not cycle_id:
        return
    current = current_cycle()
    if current and current.get("id") == cycle_id:
        redis_client().delete(CYCLE_KEY)


def abandon_cycle(*, reason: str) -> None:
    """A task of the cycle failed for good: its chord will never reach the build."""
    if redis_client().delete(CYCLE_KEY):
        logger.warning("cycle abandoned (%s); the next enqueue_cycle starts a new one", reason)


def enqueue_cycle(
    *,
    store_slug: str | None = None,
    crawl: bool = True,
    limit: int | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> CycleReport:
    """Queue one cycle (see module doc). `force` queues even while another cycle is in flight."""
    from celery import chain, chord, group

    from pipeline.distributed.tasks import crawl_store, download_store_images, plan_embeds

    stores = list(selectors.list_stores_to_crawl(slug=store_slug)) if crawl else []
    report = CycleReport(stores=[s.slug for s in stores], dry_run=dry_run)
    if dry_run:
        report.in_flight = None if force else current_cycle()
        return report
    if force:
        redis_client().delete(CYCLE_KEY)
    report.cycle_id = start_cycle(report.stores)
    if report.cycle_id is None:
        report.in_flight = current_cycle() or {"id": "?"}
        return report
    plan = plan_embeds.si(cycle_id=report.cycle_id)
    try:
        if stores:
            crawls = [
                chain(crawl_store.si(s.pk, limit=limit), download_store_images.si(s.pk))
                for s in stores
            ]
            chord(group(crawls), plan).delay()
        else:
            plan.delay()
    except Exception:
        end_cycle(report.cycle_id)  # nothing was queued: the next timer may try again
        raise
    return report
