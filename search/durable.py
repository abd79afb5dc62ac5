"""Durable writes for the files of an index version (the builder, the snapshot and sync_index).

A rename is only crash-safe once the renamed file's bytes and the directory entry are on disk, so
every writer of a version fsyncs both; this is the one spelling of "fsync a path".
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file or a directory by path (directories need an O_RDONLY descriptor on Linux)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
