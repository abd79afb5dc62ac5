"""One pipeline writer at a time: an exclusive, non-blocking flock on MEEPO_DATA_DIR/locks/pipeline.lock.

The kernel drops the lock when the process exits, however it exits, so a crashed run never leaves
a stale lock. The file keeps the holder's pid and start time for the error message.

Every command that writes the catalogue, the vectors or the index (scrape, embed, attributes,
build_index, pipeline, demo) takes it the same way, through `command_lock`; the stage functions
themselves do not lock, so `pipeline` can chain them under one hold.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from pipeline.exceptions import PipelineLocked

# EX_TEMPFAIL from sysexits.h: "try again later", distinct from a failed run (1) or bad usage (2).
LOCKED_EXIT_CODE = 75


def lock_path(name: str = "pipeline") -> Path:
    return Path(settings.MEEPO_DATA_DIR) / "locks" / f"{name}.lock"


@contextmanager
def pipeline_lock(name: str = "pipeline") -> Iterator[Path]:
    """Hold the lock for the body; raise PipelineLocked at once if another process holds it."""
    path = lock_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text(encoding="utf-8", errors="replace").strip() or "unknown"
            raise PipelineLocked(
                f"another pipeline run holds {path} ({holder}); not starting a second one"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC".encode())
        yield path
    finally:
        os.close(fd)  # closing releases the flock


@contextmanager
def command_lock(name: str = "pipeline") -> Iterator[Path]:
    """`pipeline_lock` for a management command: another holder ends the command at once with
    CommandError(returncode=75, EX_TEMPFAIL) and says who holds the lock."""
    try:
        with pipeline_lock(name) as path:
            yield path
    except PipelineLocked as exc:
        raise CommandError(str(exc), returncode=LOCKED_EXIT_CODE) from exc
