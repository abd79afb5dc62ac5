"""`manage.py build_index`: build and atomically publish a new index version from stored vectors.

Exits 0 with "nothing to do" when nothing changed since the published version; the served index
is never modified. Exit codes: 0 published or nothing to do, 1 failed, 75 locked.
"""

from django.core.management.base import BaseCommand, CommandError

from pipeline.indexing import build_index
from pipeline.lock import command_lock


class Command(BaseCommand):
    help = "Build a new faiss index from stored embeddings and publish it (if anything changed)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="plan only, write nothing")
        parser.add_argument("--force", action="store_true", help="full rebuild even if unchanged")

    def handle(self, *args, **opts):
        try:
            with command_lock():
                report = build_index(dry_run=opts["dry_run"], force=opts["force"])
        except ValueError as exc:  # e.g. the catalogue does not fit MEEPO_INDEX_MEMORY_MB
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(report.summary()))
