"""Calibration of the relevance floor (search.relevance) for a newly built index version.

Random text queries (seeded, so a rebuild of the same catalogue measures the same thing) are
encoded by the current CLIP and searched against the new index; the best score of each goes into
the manifest's `relevance` section. A meaningless query's best score is what a visual hit must
beat to be shown. Costs 128 text encodings and 128 searches, once per build (measured times:
docs/search.md, "Calibration at build time").
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pipeline.indexing import faiss_build
from search import relevance
from search.exceptions import ModelNotAvailable

logger = logging.getLogger(__name__)


def noise_profile(
    index, params: dict[str, Any], query_vectors: np.ndarray | None = None
) -> dict[str, Any] | None:
    """The relevance floor's calibration (search.relevance): the best score of each random text
    query against the new index, for the manifest. None when the model cannot be loaded (the
    floor then uses its margin alone) or the index is empty.

    `query_vectors` replaces the encoded random queries (tests and benchmarks plant them).
    """
    if index.ntotal == 0:
        return None
    kinds: list[str] = []
    if query_vectors is None:
        try:
            query_vectors, kinds = _random_query_vectors()
        except ModelNotAvailable as exc:
            logger.warning("no relevance calibration for this index: %s", exc)
            return None
    search_params = faiss_build.search_params(params)

    def best(queries: np.ndarray) -> np.ndarray:
        scores, labels = index.search(queries, 1, params=search_params)
        return np.where(labels[:, 0] >= 0, scores[:, 0], -1.0)

    return relevance.measure_noise(best, query_vectors, kinds).to_manifest()


def _random_query_vectors() -> tuple[np.ndarray, list[str]]:
    from django.conf import settings

    from search.encoder import get_encoder

    if not _model_is_local(settings.MEEPO_CLIP_MODEL):
        # The embed stage downloads the model; calibration never waits on the network for it.
        raise ModelNotAvailable(f"{settings.MEEPO_CLIP_MODEL} is not on this machine")
    encoder = get_encoder()
    vocab = encoder.processor.tokenizer.get_vocab()
    # CLIP's BPE marks a whole word's last piece with "</w>": those are the model's words.
    words = [t[:-4] for t in vocab if t.endswith("</w>")]
    queries = relevance.random_text_queries(vocabulary=words)
    vectors = np.concatenate(
        [encoder.encode_texts(queries[i : i + 32]) for i in range(0, len(queries), 32)]
    )
    return vectors, relevance.query_kinds(len(queries), vocabulary=words)


def _model_is_local(name: str) -> bool:
    from pathlib import Path

    if Path(name).expanduser().is_dir():
        return True
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(name, "config.json"), str)
