"""Shared benchmark helpers: Django setup in a throwaway data dir, timing, memory, output.

Benchmarks print a human table and then one JSON document (`--json PATH` also writes it), and
compare things measured in the same run, because this 2-core machine is shared and noisy.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np


def setup_django(data_dir: str | Path | None = None, *, migrate: bool = False) -> Path:
    """Configure Django on a fresh data directory (never the real one) and optionally migrate."""
    data = Path(data_dir or tempfile.mkdtemp(prefix="meepo-bench-"))
    os.environ["MEEPO_DATA_DIR"] = str(data)
    os.environ.setdefault("MEEPO_DEBUG", "true")
    os.environ.setdefault("MEEPO_SECRET_KEY", "bench-only")
    os.environ.setdefault("MEEPO_ALLOWED_HOSTS", "localhost")
    os.environ.setdefault("MEEPO_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meepo.settings")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    return data


def random_vit_b32(out: Path) -> Path:
    """A random-weight CLIP with the real ViT-B/32 shape under `out` (made once, then reused):
    encoding costs what the default model costs, with no download."""
    path = out / "clip-vit-b-32-random"
    if not (path / "config.json").is_file():
        from demo.random_model import save_random_clip

        save_random_clip(path, size="vit-b-32")
    return path


def percentiles(ms: Sequence[float]) -> dict[str, float]:
    if not len(ms):
        return {"p50": float("nan"), "p99": float("nan")}
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}


def time_each(fn: Callable[[Any], Any], items: Iterable[Any]) -> list[float]:
    """Milliseconds per call of fn(item)."""
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t0) * 1000)
    return out


@contextmanager
def stopwatch():
    """with stopwatch() as t: ...; t() -> seconds elapsed (frozen at exit)."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def memory_kb(pid: int | str = "self") -> dict[str, int]:
    """VmRSS, RssAnon (private) and RssFile (file-backed, shareable) from /proc, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "load_avg": os.getloadavg(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def print_table(rows: list[dict[str, Any]], columns: Sequence[str] | None = None) -> None:
    if not rows:
        return
    columns = list(columns or rows[0].keys())
    cells = [[_fmt(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


def emit_json(result: dict[str, Any], path: str | None = None) -> None:
    text = json.dumps(result, default=_jsonable, sort_keys=True)
    print(text)
    if path:
        Path(path).write_text(json.dumps(result, default=_jsonable, indent=2, sort_keys=True))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def _jsonable(value: Any):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value))
