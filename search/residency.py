"""Keeping a memory-mapped file's pages resident: `prefault` maps every page of an array into
this process at load (page-cache pages, shared by every worker that maps the same file, not a
private copy), when the file is small beside the memory available (the kernel's MemAvailable, or
the room under the process's cgroup memory limit when that is tighter)."""

from __future__ import annotations

import mmap
import sys
from pathlib import Path

import numpy as np

# vectors.npy of an ANN version is mapped in whole at load when it is at most this share of the
# memory available.
PREFAULT_SHARE = 0.25
# Where cgroup file systems are mounted; a v1 limit this large (2^63 rounded to pages) means none.
CGROUP_ROOT = Path("/sys/fs/cgroup")
NO_LIMIT = 1 << 62


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
    if mode == "auto" and array.nbytes > PREFAULT_SHARE * memory_available():
        return False
    try:
        mapped.madvise(getattr(mmap, "MADV_POPULATE_READ", 22))  # Linux 5.14+
    except OSError:  # an older kernel: pages fault in on first use, as before
        return False
    return True


def memory_available() -> int:
    """Bytes this process could still fill: the kernel's MemAvailable, or less when the process
    runs in a memory-limited cgroup (a container, a systemd unit with MemoryMax=), whose limit
    /proc/meminfo does not show: a 4 GB container on a 64 GB host must not prefault 16 GB."""
    available = _meminfo_available()
    room = cgroup_room()
    return available if room is None else min(available, room)


def _meminfo_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cgroup_room(proc: Path = Path("/proc/self/cgroup"), root: Path = CGROUP_ROOT) -> int | None:
    """Bytes between this process's cgroup memory limit and the anonymous memory charged to it
    (page cache in the group can be reclaimed, so it does not count), for cgroup v2 (`0::/path`:
    memory.max, memory.stat `anon`) or v1 (`N:memory:/path`: memory.limit_in_bytes, memory.stat
    `total_rss`); the tightest of the group and its parents. None without a limit or when the
    files cannot be read."""
    try:
        lines = proc.read_text().splitlines()
    except OSError:
        return None
    rooms = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2: the unified hierarchy, mounted at root or root/unified
            bases = [root, root / "unified"]
            limit_file, stat_key = "memory.max", "anon"
        elif "memory" in controllers.split(","):
            bases = [root / "memory"]
            limit_file, stat_key = "memory.limit_in_bytes", "total_rss"
        else:
            continue
        for base in bases:
            group = base / path.lstrip("/")
            if (group / limit_file).is_file():
                rooms += _rooms_up(group, base, limit_file, stat_key)
                break
    return min(rooms) if rooms else None


def _rooms_up(group: Path, base: Path, limit_file: str, stat_key: str) -> list[int]:
    """Room under each limit from `group` up to `base` (a parent's limit binds its children)."""
    rooms = []
    while True:
        try:
            limit = (group / limit_file).read_text().strip()
            if limit != "max" and int(limit) < NO_LIMIT:
                used = stat_value(group / "memory.stat", stat_key)
                rooms.append(max(int(limit) - used, 0))
        except (OSError, ValueError):
            pass
        if group == base or base not in group.parents:
            return rooms
        group = group.parent


def stat_value(path: Path, key: str) -> int:
    """The value of `key` in a cgroup "key value" file (memory.stat, memory.events,
    memory.oom_control); 0 when absent. OSError when the file cannot be read."""
    for line in path.read_text().splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0
