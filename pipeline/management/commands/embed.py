"""`manage.py embed`: store CLIP vectors for downloaded images missing one (`scrape` downloads).

Idempotent (a second run embeds nothing); one transaction per batch; takes the pipeline lock.
Exit codes: 0 done (or nothing to do), 1 model unavailable or too many failures, 75 locked.
"""

from django.core.management.base import BaseCommand, CommandError

from pipeline.embed import embed_images
from pipeline.lock import command_lock
from search.exceptions import ModelNotAvailable


class Command(BaseCommand):
    help = "Embed every downloaded product image that has no CLIP vector yet."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, help="embed at most N images")
        parser.add_argument("--dry-run", action="store_true", help="count, write nothing")
        parser.add_argument("--force", action="store_true", help="re-embed images already done")
        parser.add_argument("--batch-size", type=int, help="images per forward pass")
        parser.add_argument(
            "--max-failures", type=int, default=None, help="fail (exit 1) above N failed images"
        )

    def handle(self, *args, **opts):
        if opts["limit"] is not None and opts["limit"] < 0:
            raise CommandError("--limit must be >= 0", returncode=2)
        try:
            with command_lock():
                report = embed_images(
                    limit=opts["limit"],
                    dry_run=opts["dry_run"],
                    force=opts["force"],
                    batch_size=opts["batch_size"],
                )
        except ModelNotAvailable as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(report.summary()))
        if opts["max_failures"] is not None and report.failed > opts["max_failures"]:
            raise CommandError(f"{report.failed} images failed (more than --max-failures)")
