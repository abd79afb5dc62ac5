"""`manage.py attributes`: zero-shot colour / pattern / material / type for every product.

Reuses stored image vectors (run `embed` first); relabels only products whose main image, the
model or the taxonomy changed, unless --force. --dry-run counts what would be labelled.
Takes the pipeline lock. Exit codes: 0 done or nothing to do; 1 the model cannot be loaded;
2 an unusable taxonomy file; 75 another pipeline run holds the lock.
"""

from django.core.management.base import BaseCommand, CommandError

from pipeline.attributes import assign_attributes
from pipeline.lock import command_lock
from search.attributes import TaxonomyError, load_taxonomy
from search.exceptions import ModelNotAvailable


class Command(BaseCommand):
    help = "Label products' colour, pattern, material and type from their image vectors."

    def add_arguments(self, parser):
        parser.add_argument("--taxonomy", help="a taxonomy YAML (default: see docs/pipeline.md)")
        parser.add_argument("--store", help="only this store's products (slug)")
        parser.add_argument("--limit", type=int, help="label at most N products")
        parser.add_argument("--force", action="store_true", help="relabel every product")
        parser.add_argument("--dry-run", action="store_true", help="count, write nothing")

    def handle(self, *args, **opts):
        try:
            taxonomy = load_taxonomy(opts["taxonomy"])
        except TaxonomyError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        try:
            with command_lock():
                report = assign_attributes(
                    force=opts["force"],
                    dry_run=opts["dry_run"],
                    store=opts["store"],
                    limit=opts["limit"],
                    taxonomy=taxonomy,
                )
        except ModelNotAvailable as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(report.summary()))
