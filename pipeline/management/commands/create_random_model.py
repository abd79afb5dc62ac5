"""`manage.py create_random_model DIR --size tiny|vit-b-32`: a CLIP with RANDOM weights.

For offline demos, tests and speed benchmarks only: its embeddings are meaningless, so search
results are arbitrary. `vit-b-32` has the real ViT-B/32 architecture (the real cost per image).
"""

from django.core.management.base import BaseCommand

from search.random_model import SIZES, save_random_clip


class Command(BaseCommand):
    help = "Save a random-weight CLIP model (meaningless results; for offline demos/benchmarks)."

    def add_arguments(self, parser):
        parser.add_argument("path", help="directory to write")
        parser.add_argument("--size", choices=SIZES, default="tiny")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **opts):
        path = save_random_clip(opts["path"], size=opts["size"], seed=opts["seed"])
        self.stdout.write(
            self.style.WARNING(
                f"saved a RANDOM-weight {opts['size']} CLIP to {path}. Its embeddings are "
                "meaningless: use it for offline demos and speed benchmarks, never to judge "
                f"search quality. Set MEEPO_CLIP_MODEL={path} to use it."
            )
        )
