"""Crawl stores into the catalogue (stage 1 of the pipeline), under the pipeline lock.

    manage.py scrape [--store SLUG] [--limit N] [--dry-run] [--force] [--max-failures N]
                     [--concurrency N]

Up to --concurrency stores (default MEEPO_CRAWL_CONCURRENCY) are crawled at once, one request at a
time per host. Prints one line per store and a summary: created / updated / unchanged / failed.
Exit code 0 when it ran (stores that stopped us politely are not errors), 1 when a store failed
or failures exceed --max-failures, 2 for unusable arguments, 75 when another pipeline run holds
the lock.
"""

from django.core.management.base import BaseCommand, CommandError

from catalog.models import CrawlRun
from pipeline.exceptions import ScrapeFailed
from pipeline.lock import command_lock
from pipeline.scrape import scrape_stores


class Command(BaseCommand):
    help = "Crawl active stores politely and update the catalogue."

    def add_arguments(self, parser):
        parser.add_argument("--store", help="Only this store slug.")
        parser.add_argument(
            "--limit",
            type=int,
            help="At most N products per store (deactivates nothing when the cap is hit).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Fetch and parse, write nothing."
        )
        parser.add_argument(
            "--force", action="store_true", help="Ignore ETag/lastmod; re-read everything."
        )
        parser.add_argument(
            "--max-failures",
            type=int,
            default=None,
            help="Exit 1 when more items than this failed.",
        )
        parser.add_argument(
            "--concurrency", type=int, help="Stores crawled at once (MEEPO_CRAWL_CONCURRENCY)."
        )

    def handle(self, *args, store, limit, dry_run, force, max_failures, concurrency, **options):
        if limit is not None and limit < 1:
            raise CommandError("--limit must be >= 1", returncode=2)
        if concurrency is not None and concurrency < 1:
            raise CommandError("--concurrency must be >= 1", returncode=2)
        try:
            with command_lock():
                report = scrape_stores(
                    store_slug=store,
                    limit=limit,
                    dry_run=dry_run,
                    force=force,
                    concurrency=concurrency,
                )
        except ScrapeFailed as exc:
            raise CommandError(str(exc), returncode=2) from exc
        for s in report.stores:
            if options["verbosity"] >= 1:
                self.stdout.write(s.summary())
            if options["verbosity"] >= 2:
                for err in s.errors:
                    self.stdout.write(f"  {err['url']}: {err['reason']}")
        style = self.style.SUCCESS if not report.failed else self.style.WARNING
        self.stdout.write(style(report.summary()))
        if any(s.status == CrawlRun.Status.FAILED for s in report.stores):
            raise CommandError("at least one store failed; see the log and the admin's crawl runs")
        if max_failures is not None and report.failed > max_failures:
            raise CommandError(f"{report.failed} failures > --max-failures {max_failures}")
