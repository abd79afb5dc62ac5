"""Publish an index version from in-memory arrays, without a database: for benchmarks and tests.

`publish_arrays` runs the same planning, building, tuning and publishing code as
`pipeline.indexing.build_index`, and writes its manifest through the same
`pipeline.indexing.version_manifest`, so what it publishes reads like a built version. It is not
production code: nothing in the site or the pipeline calls it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from django.conf import settings

from pipeline.indexing import (
    faiss_build,
    publish,
    recall_target,
    vectors_dtype,
    version_manifest,
)
from pipeline.indexing.calibration import noise_profile
from pipeline.indexing.vectors import CHUNK, VectorFile, VectorWriter
from search.index import IDS_FILE, VECTORS_FILE
from search.manifest import CatalogueInfo


def publish_arrays(
    ids: np.ndarray,
    vectors: np.ndarray,
    *,
    model: str,
    memory_mb: int | None = None,
    exact_max: int | None = None,
    ivf_flat_max: int | None = None,
    target_recall: float | None = None,
    noise_queries: np.ndarray | None = None,
) -> tuple[Path, faiss_build.Built, float]:
    """Build and publish a version from in-memory arrays, by the same code as build_index.

    Returns (version dir, built index, build seconds including writing the files).
    `noise_queries` (unit vectors) stand for the random text queries that calibrate the relevance
    floor; without them the manifest has no calibration.
    """
    started = time.monotonic()
    order = np.argsort(ids, kind="stable")
    ids = np.ascontiguousarray(ids[order], dtype=np.int64)
    plan = faiss_build.plan_index(
        len(ids),
        vectors.shape[1],
        memory_mb=memory_mb if memory_mb is not None else settings.MEEPO_INDEX_MEMORY_MB,
        exact_max=exact_max if exact_max is not None else settings.MEEPO_INDEX_EXACT_MAX,
        ivf_flat_max=ivf_flat_max
        if ivf_flat_max is not None
        else settings.MEEPO_INDEX_IVF_FLAT_MAX,
    )
    stamp = publish.new_stamp()
    work = publish.start_version(stamp)
    np.save(work / IDS_FILE, ids)
    with VectorWriter(work / VECTORS_FILE, vectors.shape, vectors_dtype(plan)) as out:
        for start in range(0, len(ids), CHUNK):
            rows = np.arange(start, min(len(ids), start + CHUNK))
            out.write_rows(rows, vectors[order[rows]])
    target = target_recall if target_recall is not None else recall_target(plan.index_type)
    built = faiss_build.build_full(VectorFile(work / VECTORS_FILE), ids, plan, target_recall=target)
    publish.write_index_file(built.index, work)
    relevance = None
    if noise_queries is not None:
        relevance = noise_profile(built.index, built.params, noise_queries)
    manifest = version_manifest(
        stamp,
        built,
        model=model,
        catalogue=CatalogueInfo(images=len(ids)),
        target_recall=target,
        relevance=relevance,
        memory_mb=memory_mb,
    )
    publish.write_manifest(work, manifest)
    final = publish.publish(work, stamp)
    return final, built, time.monotonic() - started
