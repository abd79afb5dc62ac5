"""bench.memory_limit reads a cgroup's peak, limit hits and OOM kills (fake group directories;
entering a real group needs root and is what `bench.load --memory-limit` does)."""

from bench.memory_limit import MemoryLimit


def test_v1_report(tmp_path):
    (tmp_path / "memory.max_usage_in_bytes").write_text(str(3500 * 2**20))
    (tmp_path / "memory.failcnt").write_text("42\n")
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    report = MemoryLimit(tmp_path, 1, tmp_path / "procs", 3584).report()
    assert report == {"cgroup": "v1", "limit_mb": 3584, "peak_mb": 3500, "limit_hits": 42, "oom_kills": 1}  # fmt: skip


def test_v2_report_and_missing_peak(tmp_path):
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 0\noom_kill 0\n")
    report = MemoryLimit(tmp_path, 2, tmp_path / "procs", 4096).report()
    # memory.peak exists from Linux 5.19 only: unknown rather than 0.
    assert report == {"cgroup": "v2", "limit_mb": 4096, "peak_mb": None, "limit_hits": 7, "oom_kills": 0}  # fmt: skip


def test_leave_tolerates_a_group_already_gone(tmp_path):
    MemoryLimit(tmp_path / "gone", 1, tmp_path / "no" / "procs", 1).leave()  # no exception
