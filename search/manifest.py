"""`manifest.json`, the contract between the index builder and every reader of a published version.

One type, one writer (`write_manifest`), one reader (`read_manifest`): `pipeline.indexing` (the
build and its test/benchmark twin) writes it; `search.index`, `search.health` and `manage.py
index_status` read it. Reading is tolerant: a version written by an older builder, or by a test
helper that plants vectors without a database, lacks some sections; they come back as their empty
defaults (never a KeyError), and keys this code does not know survive a read/write round trip in
`extra`.

FORMAT history: 1 one vectors.npy written at once; 2 vectors.npy written in chunks, its dtype in
`vectors_dtype`, held_out.npz beside it; 3 `files`: every other file of the version (relative
path, size, sha256), so a web node can pull the version over HTTP and verify it
(`manage.py sync_index`). The data files are laid out as in format 2; a version without `files`
reads as an empty dict (it serves, but cannot be synced).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

MANIFEST_FILE = "manifest.json"
FORMAT = 3
# The oldest format whose data files (vectors.npy, ids.npy, held_out.npz...) match this code's:
# a build may update such a version incrementally (format 3 only added the `files` list).
SAME_DATA_SINCE = 2
HASH_CHUNK = 1 << 20


@dataclass
class BuildInfo:
    """How the version was built (absent from versions published from in-memory arrays)."""

    mode: str = ""  # full | incremental
    added: int = 0
    removed: int = 0
    seconds: float = 0.0
    phases_s: dict[str, float] = field(default_factory=dict)


@dataclass
class CatalogueInfo:
    """The catalogue state the version was built from; the next build compares its digest."""

    images: int = 0
    digest: str = ""
    max_embedding_updated_at: str | None = None  # ISO 8601


@dataclass
class FileInfo:
    """One file of a version: what a copy must match byte for byte."""

    size: int = 0
    sha256: str = ""


@dataclass
class Manifest:
    """One published index version, as recorded in its `manifest.json`."""

    model: str
    dim: int
    count: int
    index_type: str  # flat | ivf... (faiss_build.plan_index)
    params: dict[str, Any] = field(default_factory=dict)  # nlist, nprobe, tuned_for, ...
    format: int = FORMAT
    version: str = ""
    created_at: str = ""  # ISO 8601, UTC
    factory: str = ""
    vectors_dtype: str = "float32"
    estimated_bytes: int | None = None
    memory_budget_mb: int | None = None
    target_recall: float | None = None
    recall_at_10: float | None = None
    recall_at_10_between: float | None = None
    recall_queries: int | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    build: BuildInfo = field(default_factory=BuildInfo)
    catalogue: CatalogueInfo = field(default_factory=CatalogueInfo)
    # The relevance floor's calibration (search.relevance.NoiseProfile.to_manifest): the
    # distribution of random text queries' best scores; None when it was not measured.
    relevance: dict[str, Any] | None = None
    vocabulary_words: int | None = None  # words in the "did you mean" vocabulary (search.spelling)
    # Every file of the version but manifest.json, by path relative to the version directory
    # ("/"-separated): filled by write_manifest, checked by manage.py sync_index. Format 3.
    files: dict[str, FileInfo] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # keys from a newer writer, kept as read
    # The top-level keys the file had (empty for a manifest not read from a file): tells a
    # section written as null from one an older builder never wrote. Not itself written.
    keys_read: frozenset[str] = field(default_factory=frozenset, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        del data["keys_read"]
        return {**extra, **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        known = {f.name for f in fields(cls)} - {"extra", "keys_read"}
        values = {key: data[key] for key in known if key in data}
        values.setdefault("model", "")
        values.setdefault("dim", 0)
        values.setdefault("count", 0)
        values.setdefault("index_type", "")
        values["build"] = _section(BuildInfo, values.get("build"))
        values["catalogue"] = _section(CatalogueInfo, values.get("catalogue"))
        values["params"] = values.get("params") or {}
        values["latency_ms"] = values.get("latency_ms") or {}
        values["files"] = {
            str(path): _section(FileInfo, info)
            for path, info in (values.get("files") or {}).items()
        }
        extra = {key: value for key, value in data.items() if key not in known}
        return cls(**values, extra=extra, keys_read=frozenset(data))

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("an index manifest is a JSON object")
        return cls.from_dict(data)


def _section(cls, data: dict[str, Any] | None):
    names = {f.name for f in fields(cls)}
    return cls(**{key: value for key, value in (data or {}).items() if key in names})


def read_manifest(version_dir: Path) -> Manifest:
    """The manifest of one version directory. Raises OSError or ValueError if unreadable."""
    return Manifest.from_json((version_dir / MANIFEST_FILE).read_text(encoding="utf-8"))


def write_manifest(version_dir: Path, manifest: Manifest) -> None:
    """Write `manifest.json` last, recording every file already in `version_dir` (sets
    `manifest.files`): nothing may be added to a version after its manifest."""
    manifest.files = describe_files(version_dir)
    (version_dir / MANIFEST_FILE).write_text(manifest.to_json(), "utf-8")


def describe_files(version_dir: Path) -> dict[str, FileInfo]:
    """Size and sha256 of every regular file under `version_dir` but the manifest, streamed
    (constant memory; ~1 s per GB on one core)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(version_dir):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            relative = path.relative_to(version_dir).as_posix()
            if relative != MANIFEST_FILE and path.is_file() and not path.is_symlink():
                found[relative] = file_info(path)
    return found


def file_info(path: Path) -> FileInfo:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileInfo(size=size, sha256=digest.hexdigest())
