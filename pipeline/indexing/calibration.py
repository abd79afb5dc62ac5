"""Calibration of the relevance floor (search.relevance) for a newly built index version.

Random text queries (seeded, so a rebuild of the same catalogue measures the same thing) are
encoded by the current CLIP and searched against the new index; the best score of each goes into
the manifest's `relevance` section. A meaningless query's best score is what a visual hit must
beat to be shown. Costs 128 text encodings and 128 searches, once per build (measured times:
docs/search.md, "Calibration at build time").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
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
    """The random queries' vectors and kinds, kept in MEEPO_DATA_DIR/calibration/ per model and
    encoder settings: loading the encoder (fp32 weights, int8 copy, ONNX text session) to encode
    128 queries took the builder from ~1.4 to ~2.8 GB at 1 M products (bench.load), past its unit's
    MemoryMax; the same model gives the same vectors, so only the first build after a model or
    encoder change loads it."""
    from django.conf import settings

    if not _model_is_local(settings.MEEPO_CLIP_MODEL):
        # The embed stage downloads the model; calibration never waits on the network for it.
        raise ModelNotAvailable(f"{settings.MEEPO_CLIP_MODEL} is not on this machine")
    path = settings.MEEPO_DATA_DIR / "calibration" / f"{_cache_key()}.npz"
    try:
        with np.load(path) as kept:
            return kept["vectors"], [str(k) for k in kept["kinds"]]
    except (OSError, KeyError, ValueError):
        pass  # not kept yet (or unreadable): encode, then keep
    vectors, kinds = _encode_random_queries()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, vectors=vectors, kinds=np.array(kinds, dtype=str))
    os.replace(tmp, path)  # a reader never sees half a file
    return vectors, kinds


def _cache_key() -> str:
    """What the random queries' vectors depend on: the model's files (name, size, mtime), the
    encoder settings and the queries' count and seed."""
    from django.conf import settings

    model = Path(settings.MEEPO_CLIP_MODEL).expanduser()
    if not model.is_dir():
        from huggingface_hub import try_to_load_from_cache

        model = Path(try_to_load_from_cache(settings.MEEPO_CLIP_MODEL, "config.json")).parent
    files = sorted(
        (str(f.relative_to(model)), f.stat().st_size, f.stat().st_mtime_ns)
        for f in model.rglob("*")
        if f.is_file()
    )
    parts = [
        settings.MEEPO_CLIP_MODEL, files, settings.MEEPO_CLIP_QUANTIZE,
        settings.MEEPO_CLIP_TEXT_RUNTIME, settings.MEEPO_CLIP_PARITY_MIN,
        relevance.NOISE_QUERIES, relevance.NOISE_SEED,
    ]  # fmt: skip
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


def _encode_random_queries() -> tuple[np.ndarray, list[str]]:
    from search.encoder import get_encoder

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
    if Path(name).expanduser().is_dir():
        return True
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(name, "config.json"), str)
