"""search.residency's memory rule sees a cgroup's limit (containers, systemd MemoryMax=), which
/proc/meminfo does not show: fake cgroup trees for v1 and v2 under tmp_path."""

from pathlib import Path

from search import residency

MB = 1 << 20


def _group(root: Path, rel: str, files: dict[str, str]) -> Path:
    group = root / rel
    group.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (group / name).write_text(text)
    return group


def _proc(tmp_path: Path, text: str) -> Path:
    proc = tmp_path / "cgroup"
    proc.write_text(text)
    return proc


def test_v2_limit_less_anonymous_memory_is_the_room(tmp_path):
    root = tmp_path / "fs"
    _group(root, "system.slice/meepo-web.service", {
        "memory.max": str(4096 * MB), "memory.stat": f"anon {1000 * MB}\nfile {2000 * MB}\n",
    })  # fmt: skip
    proc = _proc(tmp_path, "0::/system.slice/meepo-web.service\n")
    # Page cache ("file") can be reclaimed: only anonymous memory uses up the room.
    assert residency.cgroup_room(proc, root) == 3096 * MB


def test_v2_without_a_limit_is_none(tmp_path):
    root = tmp_path / "fs"
    _group(root, "user.slice", {"memory.max": "max\n", "memory.stat": "anon 5\n"})
    assert residency.cgroup_room(_proc(tmp_path, "0::/user.slice\n"), root) is None


def test_v2_under_root_unified_as_on_hybrid_hosts(tmp_path):
    root = tmp_path / "fs"
    _group(root, "unified/app", {"memory.max": str(2048 * MB), "memory.stat": "anon 0\n"})
    assert residency.cgroup_room(_proc(tmp_path, "0::/app\n"), root) == 2048 * MB


def test_v1_memory_controller_and_a_tighter_parent(tmp_path):
    root = tmp_path / "fs"
    _group(root, "memory/docker", {
        "memory.limit_in_bytes": str(3072 * MB), "memory.stat": f"total_rss {500 * MB}\n",
    })  # fmt: skip
    _group(
        root,
        "memory/docker/abc",
        {
            "memory.limit_in_bytes": str(9223372036854771712),  # v1's "no limit"
            "memory.stat": f"total_rss {200 * MB}\n",
        },
    )
    proc = _proc(tmp_path, "4:memory:/docker/abc\n3:cpuset:/\n")
    # The child has no limit of its own; its parent's 3 GB binds it.
    assert residency.cgroup_room(proc, root) == 2572 * MB


def test_unreadable_or_missing_files_mean_no_limit_known(tmp_path):
    root = tmp_path / "fs"
    assert residency.cgroup_room(tmp_path / "absent", root) is None
    assert residency.cgroup_room(_proc(tmp_path, "0::/nowhere\n"), root) is None
    _group(root, "bad", {"memory.max": "garbage\n", "memory.stat": "anon 1\n"})
    assert residency.cgroup_room(_proc(tmp_path, "0::/bad\n"), root) is None


def test_available_memory_is_the_tighter_of_meminfo_and_the_cgroup(monkeypatch):
    monkeypatch.setattr(residency, "_meminfo_available", lambda: 20_000 * MB)
    monkeypatch.setattr(residency, "cgroup_room", lambda: 3_000 * MB)
    assert residency.memory_available() == 3_000 * MB
    monkeypatch.setattr(residency, "cgroup_room", lambda: None)
    assert residency.memory_available() == 20_000 * MB
    monkeypatch.setattr(residency, "cgroup_room", lambda: 50_000 * MB)
    assert residency.memory_available() == 20_000 * MB
