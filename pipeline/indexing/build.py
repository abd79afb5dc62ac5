"""Stage `build_index`: stored embeddings -> a new, tuned, measured faiss index version, published atomically.

Idempotent: when the catalogue state (eligible image ids, their embedding rows and the latest
embedding update) matches the published manifest, it does nothing. Otherwise it writes a new
version directory (never touching the served one) and swaps `index/current`:
  incremental  the previous version's vectors file is copied in-kernel (copy_file_range), only
               new/changed vectors are read from the database; an IVF index gets
               remove_ids/add_with_ids on a private copy of the old one, and keeps its nprobe
               when recall over all N (re-measured) still meets the target
  full         train and tune from scratch: first build, model/dimension change, --force, a
               different index type for the new size, or the catalogue outgrew (x2) or shrank
               (/2) the size the index was tuned for, or recall after an update fell below target
A crash at any point leaves the previous version serving; the next run cleans up and redoes it.

Memory is bounded whatever N: vectors stream from the database into vectors.npy one chunk at a
time, the index is trained on a sample and filled chunk by chunk from that file, and the held-out
ground truth is a running top-k over chunks (pipeline.indexing.vectors). At 1 M x 512 the peak is
the IVF-SQ8 index itself (~520 MB) plus one chunk, not the 2 GB matrix.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from django.conf import settings

from pipeline.indexing import faiss_build, publish
from pipeline.indexing.calibration import noise_profile
from pipeline.indexing.catalogue import (
    CatalogueState,
    embeddings_updated_after,
    iter_vectors,
    load_state,
)
from pipeline.indexing.vectors import CHUNK, VectorFile, VectorWriter, copy_runs
from search import catalogue_summary, keyword_index, live_rows, snapshot_write, spelling
from search.index import IDS_FILE, INDEX_FILE, VECTORS_FILE, published_dir
from search.manifest import (
    FORMAT,
    SAME_DATA_SINCE,
    BuildInfo,
    CatalogueInfo,
    Manifest,
    read_manifest,
)

logger = logging.getLogger(__name__)

EMBEDDING_IDS_FILE = "embedding_ids.npy"
HELD_OUT_FILE = "held_out.npz"  # tuning queries + their exact neighbours, for the next update
# vectors.npy dtype of ANN versions. float16 halves the file and ranks exact subset scans the
# same (tests/pipeline/test_indexing_chunked.py), but this faiss build has no F16C path, so a
# filtered query's gathered rows convert slowly (docs/benchmarks.md, "Build memory and time").
# Latency wins; the build's memory is bounded either way.
ANN_VECTORS_DTYPE = np.float32


@dataclass
class IndexReport:
    status: str  # published | nothing to do | empty | dry run
    version: str = ""
    mode: str = ""  # full | incremental
    index_type: str = ""
    count: int = 0
    added: int = 0
    removed: int = 0
    recall_at_10: float | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        if self.status != "published":
            extra = f" ({self.mode} {self.index_type}, +{self.added} -{self.removed})"
            return f"index: {self.status}, {self.count} vectors" + (
                extra if self.status == "dry run" else ""
            )
        return (
            f"index {self.version}: {self.mode} {self.index_type}, {self.count} vectors "
            f"(+{self.added} -{self.removed}), recall@10 {self.recall_at_10:.3f}, "
            f"p50 {self.latency_ms.get('p50', 0):.2f} ms, p99 {self.latency_ms.get('p99', 0):.2f} ms, "
            f"built in {self.seconds:.1f} s"
        )


@dataclass
class _Diff:
    old_dir: Path | None
    old_manifest: Manifest | None
    fresh: np.ndarray  # image ids whose vectors come from the database
    removed: np.ndarray  # image ids to drop from the old index (gone or changed)
    incremental: bool


def build_index(*, dry_run: bool = False, force: bool = False) -> IndexReport:
    """Build and publish a new index version if the catalogue changed (or `force`)."""
    started = time.monotonic()
    state = load_state(settings.MEEPO_CLIP_MODEL)
    state_s = time.monotonic() - started
    current = published_dir()
    manifest = read_manifest(current) if current else None
    if not force and _unchanged(manifest, state) and keyword_index.is_current(current):
        return IndexReport(status="nothing to do", count=state.count, version=current.name)
    if state.count == 0 and (manifest is None or manifest.model != state.model):
        return IndexReport(status="empty")
    if not state.dim:  # every image left the index: publish it empty, at the old dimension
        state = replace(state, dim=manifest.dim)
    plan = faiss_build.plan_index(
        state.count,
        state.dim,
        memory_mb=settings.MEEPO_INDEX_MEMORY_MB,
        exact_max=settings.MEEPO_INDEX_EXACT_MAX,
        ivf_flat_max=settings.MEEPO_INDEX_IVF_FLAT_MAX,
    )
    diff = _diff(current, manifest, state, plan, force=force)
    report = IndexReport(
        status="dry run",
        mode="incremental" if diff.incremental else "full",
        index_type=plan.index_type,
        count=state.count,
        added=len(diff.fresh),
        removed=len(diff.removed),
    )
    if dry_run:
        return report
    publish.prune(settings.MEEPO_INDEX_KEEP)  # leftovers of a crashed run
    stamp = publish.new_stamp()
    work = publish.start_version(stamp)
    try:
        built, report.mode = _build(work, state, plan, diff)
        built.seconds = {"state": state_s, **built.seconds}
        _write_version(work, stamp, state, built, report, started)
        publish.publish(work, stamp)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    publish.prune(settings.MEEPO_INDEX_KEEP)
    live_rows.prune_deletions()  # deleted products' tombstones no kept version needs
    report.status, report.version = "published", stamp
    report.recall_at_10, report.latency_ms = built.recall_at_10, built.latency_ms
    report.seconds = time.monotonic() - started
    return report


def _write_version(work: Path, stamp: str, state: CatalogueState, built, report, started) -> None:
    """Everything beside the vectors and ids: held-out queries, the index, the snapshot, the
    keyword index, the catalogue summary, the spelling vocabulary and, last, the manifest."""
    np.savez(work / HELD_OUT_FILE, **built.held_out)
    publish.write_index_file(built.index, work)
    snapshot_started = time.monotonic()
    # Per-image columns (owner, store, brand, price...) beside the index: search.snapshot.
    snapshot_write.write_snapshot(work, np.load(work / IDS_FILE, mmap_mode="r"))
    built.seconds["snapshot"] = time.monotonic() - snapshot_started
    keyword_started = time.monotonic()
    # Products' words for keyword search (tantivy), beside the index: search.keyword_index.
    keyword_index.write_keyword_index(work)
    built.seconds["keyword"] = time.monotonic() - keyword_started
    summary_started = time.monotonic()
    # Whole-catalogue facet counts and example queries, so no request groups the catalogue.
    catalogue_summary.write(work)
    built.seconds["summary"] = time.monotonic() - summary_started
    manifest = _manifest(stamp, state, built, report, started)
    manifest.relevance = noise_profile(built.index, built.params)
    manifest.vocabulary_words = spelling.write_vocabulary(work)  # for "did you mean"
    publish.write_manifest(work, manifest)


def _unchanged(manifest: Manifest | None, state: CatalogueState) -> bool:
    return bool(
        manifest
        and manifest.model == state.model
        and manifest.catalogue.digest == state.digest
        # A version from before the relevance floor is rebuilt once to measure its noise.
        and "relevance" in manifest.keys_read
    )


def _diff(current, manifest, state: CatalogueState, plan, *, force: bool) -> _Diff:
    usable = (
        not force
        and manifest is not None
        and SAME_DATA_SINCE <= manifest.format <= FORMAT
        and manifest.model == state.model
        and manifest.dim == state.dim
        and (current / EMBEDDING_IDS_FILE).is_file()
    )
    if not usable:
        return _Diff(None, None, state.ids, np.zeros(0, np.int64), False)
    old_ids = np.load(current / IDS_FILE, mmap_mode="r")
    old_emb = np.load(current / EMBEDDING_IDS_FILE, mmap_mode="r")
    both, in_new, in_old = np.intersect1d(state.ids, old_ids, return_indices=True)
    changed = both[state.embedding_ids[in_new] != old_emb[in_old]]
    latest = manifest.catalogue.max_embedding_updated_at
    if latest:
        rewritten = embeddings_updated_after(state.model, datetime.fromisoformat(latest))
        changed = np.union1d(changed, np.intersect1d(rewritten, both))
    added = np.setdiff1d(state.ids, old_ids)
    gone = np.setdiff1d(old_ids, state.ids)
    tuned_for = manifest.params.get("tuned_for", 0)
    same_shape = manifest.index_type == plan.index_type and (
        plan.index_type == "flat" or tuned_for / 2 <= state.count <= tuned_for * 2
    )
    return _Diff(
        current, manifest, np.union1d(added, changed), np.union1d(gone, changed), same_shape
    )


def _build(work: Path, state: CatalogueState, plan, diff: _Diff) -> tuple[faiss_build.Built, str]:
    """The new index and the build mode: "incremental" (an IVF index updated, or a flat one over
    the copied vectors) or "full" (trained from scratch, also when an update missed the target)."""
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)  # a batch job: use every core to build
    started = time.monotonic()
    vectors = _write_vectors(work, state, plan, diff)
    written = {"vectors": time.monotonic() - started}
    target = recall_target(plan.index_type)
    mode = "incremental" if diff.incremental else "full"
    if diff.incremental and plan.index_type != "flat":
        built = _update_ivf(diff, vectors, state, plan, target)
        recall = {"image": built.recall_at_10, "between": built.recall_between}
        if faiss_build.meets_target(recall, target):
            built.seconds = {**written, **built.seconds}
            return built, mode
        logger.info("recall %s after the update is below target: full rebuild", recall)
        mode = "full"
    built = faiss_build.build_full(vectors, state.ids, plan, target_recall=target)
    built.seconds = {**written, **built.seconds}
    return built, mode


def _update_ivf(diff: _Diff, vectors: VectorFile, state: CatalogueState, plan, target: float):
    import faiss

    started = time.monotonic()
    index = faiss.read_index(str(diff.old_dir / INDEX_FILE))  # a private copy, not the served mmap
    if len(diff.removed):
        index.remove_ids(np.ascontiguousarray(diff.removed, dtype=np.int64))
    fresh_rows = np.searchsorted(state.ids, diff.fresh)
    faiss_build.add_in_chunks(index, vectors, state.ids, fresh_rows)
    updated = time.monotonic() - started
    held_out = _updated_held_out(diff, vectors, fresh_rows)
    params = diff.old_manifest.params
    # The updated index keeps the old version's lists; `plan` (the new size's) stays as it is for
    # a full rebuild should this update miss the recall target.
    kept = replace(
        plan, nlist=int(params["nlist"]), factory=diff.old_manifest.factory or plan.factory
    )
    built = faiss_build.tune(
        index,
        vectors,
        state.ids,
        kept,
        target_recall=target,
        tuned_for=params["tuned_for"],
        start_nprobe=int(params.get("nprobe", 1)),
        held_out=held_out,
    )
    built.seconds = {"update": updated, **built.seconds}
    return built


def _updated_held_out(diff: _Diff, vectors: VectorFile, fresh_rows) -> dict | None:
    """The previous version's tuning queries with exact truth updated by the diff alone, or None
    (then tune() scans all N): no saved queries, or too many fresh rows to hold at once."""
    path = diff.old_dir / HELD_OUT_FILE
    if not path.is_file() or len(fresh_rows) > CHUNK:
        return None
    with np.load(path) as saved:
        previous = {key: saved[key] for key in saved.files}
    fresh_ids = np.asarray(diff.fresh, dtype=np.int64)
    return faiss_build.update_held_out(previous, diff.removed, vectors.take(fresh_rows), fresh_ids)


def recall_target(index_type: str) -> float:
    """The recall@10 an index kind is tuned to: IVF-Flat replaces exact search in the middle
    range, so it gets its own, higher target (its lists hold exact vectors: only nprobe costs)."""
    if index_type == "ivf_flat":
        return settings.MEEPO_INDEX_IVF_FLAT_RECALL
    return settings.MEEPO_INDEX_RECALL


def vectors_dtype(plan) -> np.dtype:
    # A flat index scores exactly, so its vectors are always float32.
    return np.dtype(np.float32 if plan.index_type == "flat" else ANN_VECTORS_DTYPE)


def _write_vectors(work: Path, state: CatalogueState, plan, diff: _Diff) -> VectorFile:
    """ids.npy, embedding_ids.npy and vectors.npy for the new version, in bounded memory.

    Rows kept from the previous version are copied file to file in runs (an append-only update
    is one run: the kernel copies it, nothing passes through Python); only `diff.fresh` rows are
    read from the database, one chunk at a time.
    """
    np.save(work / IDS_FILE, state.ids)
    np.save(work / EMBEDDING_IDS_FILE, state.embedding_ids)
    dtype = vectors_dtype(plan)
    fresh = diff.fresh
    old = VectorFile(diff.old_dir / VECTORS_FILE) if diff.old_dir is not None else None
    if old is not None and (old.dtype != dtype or old.dim != state.dim):
        old, fresh = None, state.ids  # index type changed across the flat/ANN line: re-read all
    with VectorWriter(work / VECTORS_FILE, (state.count, state.dim), dtype) as out:
        if old is not None:
            old_ids = np.load(diff.old_dir / IDS_FILE, mmap_mode="r")
            kept = np.setdiff1d(state.ids, fresh, assume_unique=True)
            src, dst = np.searchsorted(old_ids, kept), np.searchsorted(state.ids, kept)
            for src_start, dst_start, count in copy_runs(src, dst):
                out.copy_rows(old, src_start, dst_start, count)
        rows = np.searchsorted(state.ids, fresh)
        for start, block in iter_vectors(state.embedding_ids[rows], state.dim):
            out.write_rows(rows[start : start + len(block)], block)
    return VectorFile(work / VECTORS_FILE)


def version_manifest(
    stamp: str,
    built: faiss_build.Built,
    *,
    model: str,
    catalogue: CatalogueInfo,
    target_recall: float,
    build: BuildInfo | None = None,
    relevance: dict | None = None,
    memory_mb: int | None = None,
) -> Manifest:
    """The manifest of a version built as `built`: the one spelling every index writer uses."""
    return Manifest(
        version=stamp,
        created_at=datetime.now(UTC).isoformat(),
        model=model,
        dim=int(built.index.d),
        count=int(built.index.ntotal),
        index_type=built.plan.index_type,
        factory=built.plan.factory,
        params=built.params,
        estimated_bytes=built.plan.estimated_bytes,
        memory_budget_mb=memory_mb if memory_mb is not None else settings.MEEPO_INDEX_MEMORY_MB,
        target_recall=target_recall,
        recall_at_10=round(built.recall_at_10, 4),
        recall_at_10_between=round(built.recall_between, 4),
        recall_queries=faiss_build.RECALL_QUERIES,
        latency_ms={k: round(v, 3) for k, v in built.latency_ms.items()},
        vectors_dtype=vectors_dtype(built.plan).name,
        build=build or BuildInfo(),
        catalogue=catalogue,
        relevance=relevance,
    )


def _manifest(stamp, state: CatalogueState, built, report: IndexReport, started) -> Manifest:
    build = BuildInfo(
        mode=report.mode,
        added=report.added,
        removed=report.removed,
        seconds=round(time.monotonic() - started, 2),
        phases_s={k: round(v, 2) for k, v in built.seconds.items()},
    )
    return version_manifest(
        stamp,
        built,
        model=state.model,
        catalogue=CatalogueInfo(**state.summary()),
        target_recall=recall_target(built.plan.index_type),
        build=build,
    )
