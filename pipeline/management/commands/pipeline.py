"""`manage.py pipeline`: scrape -> embed -> build_index in one command, for cron.

Holds MEEPO_DATA_DIR/locks/pipeline.lock: an overlapping run exits at once with exit code 75
(EX_TEMPFAIL) and says who holds the lock. Exit codes: 0 all stages ok (or nothing to do),
1 a stage failed (the others still ran), 2 bad arguments, 75 another run holds the lock.
"""

import random
import time

from django.core.management.base import BaseCommand, CommandError

from pipeline.lock import command_lock
from pipeline.run import run_pipeline


class Command(BaseCommand):
    help = "Crawl stores, embed new images and publish a new index (for cron)."

    def add_arguments(self, parser):
        parser.add_argument("--store", dest="store_slug", help="only this store (slug)")
        parser.add_argument("--limit", type=int, help="at most N products/images per stage")
        parser.add_argument("--dry-run", action="store_true", help="report, write nothing")
        parser.add_argument(
            "--force", action="store_true", help="re-crawl everything and rebuild the index"
        )
        parser.add_argument("--skip-scrape", action="store_true", help="embed and index only")
        parser.add_argument(
            "--random-delay",
            type=int,
            default=0,
            metavar="SECONDS",
            help="sleep a random 0..SECONDS first, so installations do not crawl in lockstep",
        )

    def handle(self, *args, **opts):
        if opts["limit"] is not None and opts["limit"] < 0:
            raise CommandError("--limit must be >= 0", returncode=2)
        if opts["random_delay"] > 0:
            time.sleep(random.uniform(0, opts["random_delay"]))
        with command_lock():
            report = run_pipeline(
                store_slug=opts["store_slug"],
                limit=opts["limit"],
                dry_run=opts["dry_run"],
                force=opts["force"],
                scrape=not opts["skip_scrape"],
            )
        style = self.style.SUCCESS if report.ok else self.style.ERROR
        self.stdout.write(style(report.summary()))
        if not report.ok:
            raise CommandError(f"pipeline stages failed: {', '.join(report.failed_stages)}")
