"""`manage.py enqueue_cycle`: queue one pipeline cycle on the Celery workers (distributed mode).

    manage.py enqueue_cycle [--store SLUG] [--limit N] [--no-crawl] [--force] [--dry-run]

Crawl tasks per store, then embed batches for what is new, then one index build and publish
(pipeline.distributed.cycle). Returns at once; `manage.py pipeline_status` shows the progress.
Run by the systemd timer meepo-enqueue.timer (or cron) in place of `manage.py pipeline`.

Exit codes: 0 queued; 75 (EX_TEMPFAIL) when the previous cycle is still in flight and nothing was
queued (a timer firing early is not a failure; --force queues anyway); 2 without
MEEPO_BROKER_URL or for an unknown --store; 1 when the broker cannot be reached.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog import selectors
from pipeline.lock import LOCKED_EXIT_CODE


class Command(BaseCommand):
    help = "Queue one crawl -> embed -> publish cycle on the Celery workers (MEEPO_BROKER_URL)."

    def add_arguments(self, parser):
        parser.add_argument("--store", help="Only this store slug.")
        parser.add_argument("--limit", type=int, help="At most N products per store.")
        parser.add_argument(
            "--no-crawl", action="store_true", help="Skip crawling: embed what is pending, publish."
        )
        parser.add_argument(
            "--force", action="store_true", help="Queue even if a cycle is still in flight."
        )
        parser.add_argument("--dry-run", action="store_true", help="Say what would be queued.")

    def handle(self, *args, store, limit, no_crawl, force, dry_run, **options):
        from redis.exceptions import RedisError

        from pipeline.distributed.cycle import enqueue_cycle

        if not settings.MEEPO_BROKER_URL:
            raise CommandError(
                "MEEPO_BROKER_URL is empty: distributed mode is off (use `manage.py pipeline`)",
                returncode=2,
            )
        if store and not selectors.list_stores_to_crawl(slug=store).exists():
            raise CommandError(f"no store with slug {store!r}", returncode=2)
        try:
            report = enqueue_cycle(
                store_slug=store, crawl=not no_crawl, limit=limit, force=force, dry_run=dry_run
            )
        except (RedisError, OSError) as exc:
            raise CommandError(f"cannot reach the broker: {exc}") from exc
        if report.in_flight:
            raise CommandError(report.summary(), returncode=LOCKED_EXIT_CODE)
        self.stdout.write(self.style.SUCCESS(report.summary()))
