"""`manage.py download_model --to DIR`: save an image-text model (weights + processor) to a directory.

Run it on a machine with internet, copy DIR to the server and set MEEPO_CLIP_MODEL=DIR; the
server then never needs the Hugging Face hub. Re-running overwrites DIR with the same files.
`--list` prints the recommended models (docs/search.md has the measured speeds) and exits.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

# (hub id, languages, note). Measured sizes and speeds: docs/search.md, "Choosing a model".
RECOMMENDED = (
    ("openai/clip-vit-base-patch32", "English", "the default: fastest, 512-d"),
    (
        "openai/clip-vit-base-patch16",
        "English",
        "finer patches: ~4x the image cost of B/32",
    ),
    (
        "google/siglip-base-patch16-224",
        "English",
        "stronger zero-shot than CLIP in its paper, 768-d",
    ),
    ("google/siglip2-base-patch16-224", "multilingual", "SigLIP 2: queries in most languages"),
    (
        "google/siglip2-large-patch16-256",
        "multilingual",
        "larger and stronger; slow on 2 CPU cores",
    ),
    ("OFA-Sys/chinese-clip-vit-base-patch16", "Chinese", "ChineseCLIP"),
    ("BAAI/AltCLIP", "English, Chinese", "AltCLIP (XLM-R text tower)"),
)


class Command(BaseCommand):
    help = "Download an image-text model from the Hugging Face hub and save it to a directory."

    def add_arguments(self, parser):
        parser.add_argument("--to", help="directory to save the model into")
        parser.add_argument("--list", action="store_true", help="list recommended models")
        parser.add_argument(
            "--model", help="hub id (default: MEEPO_CLIP_MODEL, or openai/clip-vit-base-patch32)"
        )

    def handle(self, *args, **opts):
        if opts["list"]:
            for name, languages, note in RECOMMENDED:
                self.stdout.write(f"{name:<40} {languages:<17} {note}")
            return
        if not opts["to"]:
            raise CommandError("--to DIR is required (or --list)", returncode=2)
        from transformers import AutoModel, AutoProcessor

        name = opts["model"] or settings.MEEPO_CLIP_MODEL
        if Path(name).is_dir():
            raise CommandError(f"{name} is already a local directory; nothing to download")
        target = Path(opts["to"]).expanduser().resolve()
        try:
            model = AutoModel.from_pretrained(name)
            processor = AutoProcessor.from_pretrained(name, backend="pil")
        except Exception as exc:  # no network, unknown id, ...
            raise CommandError(
                f"cannot download {name!r}: {type(exc).__name__}: {str(exc)[:300]}. "
                "This needs access to huggingface.co."
            ) from exc
        target.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(target)
        processor.save_pretrained(target)
        self.stdout.write(
            self.style.SUCCESS(f"saved {name} to {target}; set MEEPO_CLIP_MODEL={target}")
        )
