"""Embed a given batch of image assets: the body of the `embed_batch` task.

Idempotent by construction: the batch is narrowed to assets that still need a vector for
settings.MEEPO_CLIP_MODEL (pipeline.embed.pending_assets), and vectors are upserted on the
(asset, model) unique key, so a batch delivered twice (a worker killed -9 after committing part of
it, a visibility timeout that lapsed) embeds each asset once and writes no second row. Each
forward batch is committed on its own: a killed worker loses at most the batch in flight.

On a CUDA worker (MEEPO_CLIP_DEVICE=cuda) a task's assets go through the model in one forward
batch under fp16 autocast (the stored vectors stay float32 and L2-normalised); a CPU worker uses
MEEPO_EMBED_BATCH.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence

from django.conf import settings

from pipeline.embed import EmbedReport, pending_assets
from pipeline.embed import _load_thumbnail as load_thumbnail
from pipeline.embed import _store_batch as store_batch

logger = logging.getLogger(__name__)


def forward_batch_size(device: str, task_size: int) -> int:
    """Images per forward pass: the whole task on a GPU, MEEPO_EMBED_BATCH on a CPU."""
    if device == "cuda":
        return max(settings.MEEPO_EMBED_BATCH, task_size)
    return settings.MEEPO_EMBED_BATCH


def precision(device: str):
    """fp16 autocast on CUDA (about twice the throughput, cosine to fp32 > 0.999); none on CPU."""
    if device != "cuda":
        return contextlib.nullcontext()
    import torch

    return torch.autocast("cuda", dtype=torch.float16)


def embed_assets(asset_ids: Sequence[int]) -> EmbedReport:
    """Embed those of `asset_ids` that still need a vector for the current model."""
    started = time.monotonic()
    model = settings.MEEPO_CLIP_MODEL
    report = EmbedReport(model=model)
    todo = list(pending_assets(model).filter(pk__in=list(asset_ids)).values_list("pk", "thumbnail"))
    report.candidates = len(todo)
    if todo:
        from search.encoder import get_encoder

        encoder = get_encoder()
        size = forward_batch_size(encoder.device, len(todo))
        with precision(encoder.device):
            for batch in encoder.encode_stream(todo, load_thumbnail, batch_size=size):
                store_batch(model, encoder.dim, batch)
                report.embedded += len(batch.items)
                report.failed += len(batch.failures)
    report.seconds = time.monotonic() - started
    logger.info("%s", report.summary())
    return report
