"""Stage `embed`: store a CLIP vector for every image asset that an indexable product image uses
and that has none for settings.MEEPO_CLIP_MODEL. Images are downloaded by `scrape` (their one
owner, per store and through each host's gate); embed reads only the stored thumbnails.

Guarantees:
- Idempotent: an asset is embedded once per model (the model name is part of the Embedding key),
  so a second run does no model work, and changing MEEPO_CLIP_MODEL re-embeds everything.
  `force` re-embeds anyway (the vectors are overwritten, which the next build_index picks up).
- One short transaction per batch: a crash loses at most the batch in flight; the next run
  resumes with what is still missing.
- An image that cannot be read or decoded is recorded in EmbeddingFailure with the reason and
  retried on later runs (up to MAX_ATTEMPTS, then only with `force`); the rest go on.
- The model is loaded only when there is something to embed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from tqdm import tqdm

from catalog.models import ImageAsset, ProductImage
from search.models import Embedding, EmbeddingFailure

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


@dataclass
class EmbedReport:
    model: str
    candidates: int = 0
    embedded: int = 0
    failed: int = 0
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        if self.dry_run:
            line = f"embed (dry run): {self.candidates} images to embed with {self.model}"
        else:
            line = (
                f"embed: {self.embedded} embedded, {self.failed} failed of {self.candidates} "
                f"with {self.model} in {self.seconds:.1f} s ({self.images_per_second:.1f} images/s)"
            )
        return line


def pending_assets(model: str, *, force: bool = False):
    """Assets used by an indexable product image that still need a vector for `model`."""
    qs = ImageAsset.objects.filter(pk__in=ProductImage.objects.indexable().values("asset"))
    if not force:
        qs = qs.exclude(embeddings__model_name=model).exclude(
            pk__in=EmbeddingFailure.objects.filter(
                model_name=model, attempts__gte=MAX_ATTEMPTS
            ).values("asset")
        )
    return qs.order_by("pk")


def embed_images(
    *,
    limit: int | None = None,
    dry_run: bool = False,
    force: bool = False,
    batch_size: int | None = None,
) -> EmbedReport:
    """Embed every indexable asset that has no vector for the current model yet."""
    started = time.monotonic()
    model = settings.MEEPO_CLIP_MODEL
    report = EmbedReport(model=model, dry_run=dry_run)
    todo = list(pending_assets(model, force=force).values_list("pk", "thumbnail")[:limit])
    report.candidates = len(todo)
    if dry_run or not todo:
        report.seconds = time.monotonic() - started
        return report
    from search.encoder import get_encoder

    encoder = get_encoder()
    with tqdm(total=len(todo), desc="embed", unit="img", disable=None) as bar:
        for batch in encoder.encode_stream(
            todo, _load_thumbnail, batch_size=batch_size or settings.MEEPO_EMBED_BATCH
        ):
            _store_batch(model, encoder.dim, batch)
            report.embedded += len(batch.items)
            report.failed += len(batch.failures)
            bar.update(len(batch.items) + len(batch.failures))
    report.seconds = time.monotonic() - started
    return report


def _load_thumbnail(item: tuple[int, str]):
    from search.images import open_image

    _, name = item
    if not name:
        raise FileNotFoundError("asset has no thumbnail file")
    return open_image((Path(settings.MEDIA_ROOT) / name).read_bytes())


def _store_batch(model: str, dim: int, batch) -> None:
    ok_ids = [pk for pk, _ in batch.items]
    rows = [
        Embedding(
            asset_id=pk,
            model_name=model,
            dim=dim,
            vector=Embedding.pack(vector),
        )
        for pk, vector in zip(ok_ids, batch.vectors, strict=True)
    ]
    with transaction.atomic():
        Embedding.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["asset", "model_name"],
            update_fields=["vector", "dim", "updated_at"],
        )
        EmbeddingFailure.objects.filter(model_name=model, asset_id__in=ok_ids).delete()
        for (pk, _), exc in batch.failures:
            logger.warning("asset %s: cannot embed: %s", pk, exc)
            _record_failure(model, pk, f"{type(exc).__name__}: {exc}"[:500])


def _record_failure(model: str, asset_id: int, error: str) -> None:
    updated = EmbeddingFailure.objects.filter(model_name=model, asset_id=asset_id).update(
        error=error, attempts=F("attempts") + 1, updated_at=timezone.now()
    )
    if not updated:
        EmbeddingFailure.objects.create(model_name=model, asset_id=asset_id, error=error)
