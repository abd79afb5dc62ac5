"""What the distributed pipeline is doing: queue depths, unacknowledged tasks, locks, failures.

Read straight from Redis (the Celery queues are Redis lists named after the queue; kombu keeps
delivered-but-unacknowledged messages in the `unacked` hash) and from TaskFailure rows. Read
only; used by `manage.py pipeline_status` and the admin's task failure page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

QUEUES = ("crawl", "embed", "build")
# kombu's Redis transport keeps priority levels 3, 6 and 9 in lists "<queue>\x06\x16<level>".
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


@dataclass
class PipelineStatus:
    queues: dict[str, int] = field(default_factory=dict)
    unacked: int = 0  # delivered to a worker, not yet acknowledged (running or prefetched)
    locks: list[dict] = field(default_factory=list)
    cycle: dict | None = None
    failures_24h: int = 0
    recent_failures: list = field(default_factory=list)
    error: str = ""  # Redis unreachable: the rest of the report still comes from the database

    def lines(self) -> list[str]:
        out = []
        if self.error:
            out.append(f"redis: UNREACHABLE: {self.error}")
        else:
            depths = ", ".join(f"{name} {n}" for name, n in self.queues.items())
            out.append(f"queues: {depths}; unacknowledged {self.unacked}")
            cycle = self.cycle
            out.append(
                f"cycle: {cycle['id']} queued {cycle['queued_at']} ({len(cycle['stores'])} stores)"
                if cycle
                else "cycle: none in flight"
            )
            out.append(f"locks: {len(self.locks)} held")
            out += [
                f"  {lock['name']}  {lock['holder']}  {lock['expires_in']:.0f} s left"
                for lock in self.locks
            ]
        out.append(f"failures: {self.failures_24h} in the last 24 h")
        out += [
            f"  {f.created_at:%Y-%m-%d %H:%M} {f.task_name} on {f.worker or '?'}: {f.error[:120]}"
            for f in self.recent_failures
        ]
        return out


def queue_depths(client) -> dict[str, int]:
    return {
        name: sum(client.llen(name + suffix) for suffix in _PRIORITY_SUFFIXES) for name in QUEUES
    }


def pipeline_status(*, failures: int = 10) -> PipelineStatus:
    from pipeline.distributed.cycle import current_cycle
    from pipeline.distributed.locks import held_locks, redis_client
    from pipeline.models import TaskFailure

    since = timezone.now() - timedelta(hours=24)
    status = PipelineStatus(
        failures_24h=TaskFailure.objects.filter(created_at__gte=since).count(),
        recent_failures=list(TaskFailure.objects.order_by("-created_at")[:failures]),
    )
    if not settings.MEEPO_BROKER_URL:
        status.error = "distributed mode is off (MEEPO_BROKER_URL is empty)"
        return status
    from redis.exceptions import RedisError

    try:
        client = redis_client()
        status.queues = queue_depths(client)
        status.unacked = client.hlen("unacked")
        status.locks = held_locks()
        status.cycle = current_cycle()
    except RedisError as exc:
        status.error = str(exc)
    return status
