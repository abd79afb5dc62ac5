"""The index builder, stage `build_index`: stored embeddings -> a tuned, measured faiss version.

Modules: `build` (the stage: what changed, full or incremental, write, measure, publish),
`faiss_build` (plan, train and tune, with no database and no files), `vectors` (bounded-memory
vector files), `catalogue` (which images are indexable, their vectors from the database),
`calibration` (the relevance floor's noise profile), `publish` (atomic swap and clean-up).
The names callers use are re-exported here.
"""

from pipeline.indexing.build import (
    EMBEDDING_IDS_FILE,
    HELD_OUT_FILE,
    IndexReport,
    build_index,
    recall_target,
    vectors_dtype,
    version_manifest,
)

__all__ = [
    "EMBEDDING_IDS_FILE",
    "HELD_OUT_FILE",
    "IndexReport",
    "build_index",
    "recall_target",
    "vectors_dtype",
    "version_manifest",
]
