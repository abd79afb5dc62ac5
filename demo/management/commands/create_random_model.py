"""`manage.py create_random_model DIR [--family clip|siglip|siglip2] [--size ...]`: RANDOM weights.

For offline demos, tests and speed benchmarks only: its embeddings are meaningless, so search
results are arbitrary. CLIP `vit-b-32` and SigLIP `base` have the real architectures and
vocabulary sizes (the real cost per image and per query).
"""

from django.core.management.base import BaseCommand, CommandError

from demo.random_model import FAMILIES, SIZES, save_random_model


class Command(BaseCommand):
    help = "Save a random-weight CLIP model (meaningless results; for offline demos/benchmarks)."

    def add_arguments(self, parser):
        parser.add_argument("path", help="directory to write")
        parser.add_argument("--family", choices=FAMILIES, default="clip")
        parser.add_argument("--size", choices=sorted({*SIZES, "base"}), default="tiny")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **opts):
        try:
            path = save_random_model(
                opts["path"], family=opts["family"], size=opts["size"], seed=opts["seed"]
            )
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        self.stdout.write(
            self.style.WARNING(
                f"saved a RANDOM-weight {opts['size']} {opts['family']} model to {path}. Its embeddings are "
                "meaningless: use it for offline demos and speed benchmarks, never to judge "
                f"search quality. Set MEEPO_CLIP_MODEL={path} to use it."
            )
        )
