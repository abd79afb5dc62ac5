"""Write an index version directory and publish it atomically; prune old versions.

A version is written under index/.tmp-<stamp>/ and renamed to index/<stamp>/ only when every file
is complete and fsynced; `index/current` is then replaced in one os.replace of a fresh symlink.
A crash at any point leaves `current` pointing at the previous, complete version; leftovers of a
crashed run are removed by the next build: .tmp-* dirs and links, and a version renamed into
place but never published (kill -9 between the rename and the swap). Such an orphan is newer
than `current` (stamps grow with time and every publish moves `current` to the newest version),
so only `current` and older versions count toward MEEPO_INDEX_KEEP.
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from search import manifest as manifest_file
from search.durable import fsync_path
from search.index import CURRENT_LINK, INDEX_FILE, index_root
from search.manifest import Manifest

logger = logging.getLogger(__name__)
TMP_PREFIX = ".tmp-"


def new_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def start_version(stamp: str) -> Path:
    root = index_root()
    root.mkdir(parents=True, exist_ok=True)
    work = root / f"{TMP_PREFIX}{stamp}"
    work.mkdir()
    return work


def write_index_file(index, work: Path) -> None:
    import faiss

    faiss.write_index(index, str(work / INDEX_FILE))


def write_manifest(work: Path, manifest: Manifest) -> None:
    """The manifest, last: it lists every file of `work` with its sha256 and names the version
    (the stamp), so a web node can find and verify it (`manage.py sync_index`)."""
    manifest.version = manifest.version or work.name.removeprefix(TMP_PREFIX)
    manifest_file.write_manifest(work, manifest)


def publish(work: Path, stamp: str) -> Path:
    """Make `work` the served version: fsync, rename into place, swap `current`."""
    for path in work.iterdir():
        fsync_path(path)
    final = work.parent / stamp
    os.rename(work, final)
    fsync_path(work.parent)
    tmp_link = work.parent / f"{TMP_PREFIX}link-{stamp}"
    try:
        tmp_link.symlink_to(stamp)  # relative: the data directory can move
        swap_current(tmp_link, work.parent / CURRENT_LINK)
    except BaseException:
        # Not published: drop the orphan so it never counts as a kept version.
        if (work.parent / CURRENT_LINK).resolve() != final.resolve():
            shutil.rmtree(final, ignore_errors=True)
        tmp_link.unlink(missing_ok=True)
        raise
    fsync_path(work.parent)
    logger.info("published index version %s", stamp)
    return final


def swap_current(tmp_link: Path, current: Path) -> None:
    os.replace(tmp_link, current)


def prune(keep: int) -> list[str]:
    """Delete crashed leftovers and all but the newest `keep` published versions (never the
    current one). Returns the names removed."""
    root = index_root()
    if not root.is_dir():
        return []
    link = root / CURRENT_LINK
    current = link.resolve() if link.is_symlink() else None
    removed = []
    for path in root.iterdir():
        if path.name.startswith(TMP_PREFIX):
            _remove(path)
            removed.append(path.name)
    versions = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.is_symlink()),
        key=lambda p: p.name,
        reverse=True,
    )
    # Renamed into place but never published: no `current` at all, or newer than `current`.
    orphans = [p for p in versions if current is None or p.name > current.name]
    published = [p for p in versions if p not in orphans]
    for path in orphans + published[max(keep, 1) :]:
        if path.resolve() != current:
            _remove(path)
            removed.append(path.name)
    return removed


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    else:
        # Workers that still have these files mmapped keep reading them: unlink is safe on POSIX.
        shutil.rmtree(path, ignore_errors=True)
