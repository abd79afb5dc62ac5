"""Keeping a memory-mapped file's pages resident: `prefault` maps every page of an array into
this process at load (page-cache pages, shared by every worker that maps the same file, not a
private copy), when the file is small beside the memory available."""

from __future__ import annotations

import mmap
import sys
from pathlib import Path

import numpy as np

# vectors.npy of an ANN version is mapped in whole at load when it is at most this share of the
# memory available.
PREFAULT_SHARE = 0.25


def prefault(array: np.ndarray) -> bool:
    """Map every page of a memory-mapped array into this process now (MADV_POPULATE_READ), when
    the file is small beside the memory available. An exact subset scan reads a few thousand
    rows spread over the whole file: at 1 M rows each first touch of a page cost a fault, 5-10 ms
    per new filter in a fresh worker, against ~50 ms once here (bench/filtered.py). Where the
    file would not stay in memory, nothing is done (the kernel then reads pages on demand).
    MEEPO_INDEX_PREFAULT "on"/"off" overrides the rule (e.g. to measure what a 4 GB VPS does on a
    bigger machine)."""
    from django.conf import settings

    mode = settings.MEEPO_INDEX_PREFAULT
    mapped = getattr(array, "_mmap", None)
    if mode == "off" or mapped is None or sys.platform != "linux":
        return False
    if mode == "auto" and array.nbytes > PREFAULT_SHARE * _memory_available():
        return False
    try:
        mapped.madvise(getattr(mmap, "MADV_POPULATE_READ", 22))  # Linux 5.14+
    except OSError:  # an older kernel: pages fault in on first use, as before
        return False
    return True


def _memory_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
