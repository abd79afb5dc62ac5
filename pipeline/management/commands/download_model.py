"""`manage.py download_model --to DIR`: save a CLIP model (weights + processor) to a directory.

Run it on a machine with internet, copy DIR to the server and set MEEPO_CLIP_MODEL=DIR; the
server then never needs the Hugging Face hub. Re-running overwrites DIR with the same files.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Download a CLIP model from the Hugging Face hub and save it to a local directory."

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, help="directory to save the model into")
        parser.add_argument(
            "--model", help="hub id (default: MEEPO_CLIP_MODEL, or openai/clip-vit-base-patch32)"
        )

    def handle(self, *args, **opts):
        from transformers import CLIPModel, CLIPProcessor

        name = opts["model"] or settings.MEEPO_CLIP_MODEL
        if Path(name).is_dir():
            raise CommandError(f"{name} is already a local directory; nothing to download")
        target = Path(opts["to"]).expanduser().resolve()
        try:
            model = CLIPModel.from_pretrained(name)
            processor = CLIPProcessor.from_pretrained(name, backend="pil")
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
