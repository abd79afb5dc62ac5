"""Run a benchmark inside a memory-limited cgroup: the 4 GB VPS on a bigger machine.

Summing the processes' RSS or PSS says what a stack would use, not what it does when memory is
short: on the VPS the page cache (the memory-mapped index, vectors.npy, SQLite's pages) competes
with the processes for the same 4 GB, and past the limit the kernel reclaims cache, then kills.
A cgroup's limit charges both, as the VPS would. The calling process moves into a new child group
(everything it starts afterwards inherits it) and reads the group's peak and OOM kills at the end.

Needs root and a writable cgroup file system: cgroup v1's memory controller
(/sys/fs/cgroup/memory) or cgroup v2 with the memory controller enabled for children.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from search.residency import stat_value

ROOT = Path("/sys/fs/cgroup")


@dataclass
class MemoryLimit:
    group: Path
    version: int
    parent_procs: Path
    limit_mb: int

    def report(self) -> dict:
        """The group's peak charge (processes + their page cache, MB), limit hits, OOM kills."""
        if self.version == 1:
            peak = int(_read(self.group / "memory.max_usage_in_bytes") or 0)
            kills = _field(self.group / "memory.oom_control", "oom_kill")
            hits = int(_read(self.group / "memory.failcnt") or 0)
        else:
            peak = int(_read(self.group / "memory.peak") or 0)  # Linux 5.19+
            kills = _field(self.group / "memory.events", "oom_kill")
            hits = _field(self.group / "memory.events", "max")
        return {
            "cgroup": f"v{self.version}",
            "limit_mb": self.limit_mb,
            "peak_mb": round(peak / 2**20) if peak else None,
            "limit_hits": hits,
            "oom_kills": kills,
        }

    def leave(self) -> None:
        """Move this process back out and remove the group (its other processes have ended)."""
        try:
            self.parent_procs.write_text(str(os.getpid()))
            self.group.rmdir()
        except OSError:
            pass


def enter(limit_mb: int, name: str = "meepo-bench") -> MemoryLimit:
    """Move this process into a new cgroup limited to `limit_mb` (memory and swap); raises
    RuntimeError saying why when no writable memory controller is found."""
    limit = str(limit_mb * 2**20)
    group_name = f"{name}-{os.getpid()}"
    v1 = ROOT / "memory"
    if (v1 / "cgroup.procs").is_file():
        group = v1 / group_name
        group.mkdir(exist_ok=True)
        (group / "memory.limit_in_bytes").write_text(limit)
        swap = group / "memory.memsw.limit_in_bytes"
        if swap.is_file():  # no swapping around the limit either, as on a VPS without swap
            swap.write_text(limit)
        (group / "cgroup.procs").write_text(str(os.getpid()))
        return MemoryLimit(group, 1, v1 / "cgroup.procs", limit_mb)
    if "memory" in (_read(ROOT / "cgroup.subtree_control") or "").split():
        group = ROOT / group_name
        group.mkdir(exist_ok=True)
        (group / "memory.max").write_text(limit)
        if (group / "memory.swap.max").is_file():
            (group / "memory.swap.max").write_text("0")
        (group / "cgroup.procs").write_text(str(os.getpid()))
        return MemoryLimit(group, 2, ROOT / "cgroup.procs", limit_mb)
    raise RuntimeError(
        "no writable cgroup memory controller (needs root; cgroup v1 memory or v2 with memory "
        "in cgroup.subtree_control)"
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _field(path: Path, key: str) -> int:
    try:
        return stat_value(path, key)
    except OSError:  # not this kernel's file
        return 0
