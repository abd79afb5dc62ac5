"""`manage.py sync_index --from URL`: pull the builder's current index version onto this web node.

Downloads `URL/current/manifest.json`, then every file of that version, verifies sizes and
sha256 against the manifest and publishes it as a local build does (atomic swap of
index/current, MEEPO_INDEX_KEEP versions kept); the web workers' hot reload serves it. Idempotent:
when the builder's version is already current here, nothing is downloaded. See pipeline.index_sync.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pipeline.index_sync import SyncFailed, sync_index
from pipeline.lock import command_lock

HELP = """\
Pull the builder's current index version, verify it, and make it current here.

Usage (every web node, from meepo-sync-index.timer):
  manage.py sync_index --from http://builder:8081/index/ [--quiet]
  manage.py sync_index             (uses MEEPO_SYNC_FROM)

URL is the builder's index directory as its nginx serves it (deploy/nginx/meepo-builder.conf):
URL/current/manifest.json names the version and lists its files with size and sha256.

Exit codes: 0 synced, or already current (nothing downloaded); 64 no/bad URL; 65 a download
did not match the manifest (checksum, size, truncated) or exceeds MEEPO_SYNC_MAX_MB; 66 the
builder has no usable manifest (404, not JSON, no file list); 69 builder unreachable (refused,
timeout, HTTP 5xx); 74 cannot write here (disk full); 75 another sync or build holds the lock.
On any failure index/current is unchanged and the temporary download is removed.
"""


class Command(BaseCommand):
    help = HELP
    # Needs neither the database nor the URLconf: a web node syncs even while it is misconfigured.
    requires_system_checks = []

    def create_parser(self, prog_name, subcommand, **kwargs):
        from argparse import RawDescriptionHelpFormatter

        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter
        return parser

    def add_arguments(self, parser):
        parser.add_argument(
            "--from",
            dest="source",
            default="",
            metavar="URL",
            help="the builder's index URL, e.g. http://builder:8081/index/ (default: MEEPO_SYNC_FROM)",
        )
        parser.add_argument(
            "--quiet",
            action="store_true",
            help="print nothing when already current (for a timer); errors still go to stderr",
        )

    def handle(self, *args, **opts):
        source = opts["source"] or settings.MEEPO_SYNC_FROM
        try:
            with command_lock():
                report = sync_index(source)
        except SyncFailed as exc:
            raise CommandError(f"sync_index: {exc}", returncode=exc.exit_code) from exc
        if report.status == "synced":
            self.stdout.write(self.style.SUCCESS(report.summary()))
        elif not opts["quiet"]:
            self.stdout.write(report.summary())
