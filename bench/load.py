"""Load benchmark: wrk against nginx -> gunicorn on 127.0.0.1, over a synthetic catalogue, while
a pipeline run (embed new images, then a full index rebuild) works beside the web workers.

Reports requests/s, latency p50/p90/p99, errors (must be 0), and the whole stack's peak memory
(gunicorn master + workers + nginx + the pipeline process), as summed RSS (counts shared pages
once per process: an upper bound), summed PSS (shares them out) and summed anonymous memory
(private heap, which page-cache reclaim cannot give back), split per role and per web worker
(with each worker's resident share of the mapped vectors.npy).

    .venv/bin/python -m bench.load --products 1000000 --duration 60 --connections 8

The catalogue (bench/out/load-<N>/) is built once and reused. Model: a random-weight CLIP with
the real ViT-B/32 shape, so memory and compute match the default model. Every request comes from
one IP, so the per-IP rate limit is rendered high for the run (the nginx tests cover it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

from bench.common import emit_json, machine, print_table, random_vit_b32  # noqa: E402  (needs ROOT on sys.path)
from bench.wrk import SMAPS_FIELDS, children, server_memory_mb  # noqa: E402
from tests.deploy.stack import Stack, app_env, http  # noqa: E402

LUA = """
local queries = {%s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/search?q=" .. queries[(counter %% #queries) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "duration_s": %%.3f, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"status": %%d, "timeout": %%d, "p50_ms": %%.2f, "p90_ms": %%.2f, "p99_ms": %%.2f, ' ..
    '"max_ms": %%.2f, "mean_ms": %%.2f}\\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000))
end
"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=60, help="seconds of load")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--fresh-images", type=int, default=200, help="new images the concurrent pipeline embeds")  # fmt: skip
    parser.add_argument("--json", help="also write the JSON result here")
    parser.add_argument("--no-pipeline", action="store_true", help="load only, no concurrent pipeline run")  # fmt: skip
    parser.add_argument("--unique", type=int, default=0, metavar="N", help="send N unique queries (bench.search's generator, sliced per wrk thread) instead of cycling 360 two-word ones")  # fmt: skip
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="server and pipeline setting (repeatable)")  # fmt: skip
    parser.add_argument("--memory-limit", type=int, metavar="MB", help="run everything in a cgroup of this many MB (the VPS: page cache and processes share it; needs root)")  # fmt: skip
    return parser.parse_args()


def _model_dir() -> Path:
    return random_vit_b32(OUT)


def _manage(env, *args, **kwargs):
    command = [sys.executable, "manage.py", *args]
    return subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True, **kwargs)  # fmt: skip


def prepare(products: int, env: dict[str, str], data: Path) -> dict:
    """Migrate, collect static, build the catalogue and its index once per size."""
    done = data / "catalogue.json"
    # Code changes between runs: bring a reused catalogue's schema and static files up to date.
    started = time.monotonic()
    _manage(env, "migrate", "--noinput")
    _manage(env, "collectstatic", "--noinput")
    if done.is_file():
        return json.loads(done.read_text())
    add = f"from tests.deploy.catalogue import add_products; add_products({products}, seed=0)"
    _manage(env, "shell", "-c", add)
    built_at = time.monotonic()
    index = _manage(env, "build_index").stdout.strip().splitlines()[-1]
    info = {
        "products": products,
        "catalogue_s": round(built_at - started, 1),
        "index_s": round(time.monotonic() - built_at, 1),
        "index": index,
        "db_mb": round((data / "db.sqlite3").stat().st_size / 2**20),
    }
    done.write_text(json.dumps(info))
    return info


class MemorySampler(threading.Thread):
    """The stack's memory, sampled every 0.25 s: per role (a root process and its children, read
    by `bench.wrk.server_memory_mb`), summed RSS (shared pages once per process: an upper bound),
    PSS (shared pages split between their users) and anonymous memory (private heap: what no
    page-cache reclaim can give back). Peaks are kept per measure, with the per-role split at the
    RSS peak and at the anonymous peak, and per role on its own (a builder's peak need not fall at
    the stack's)."""

    KEYS = tuple(SMAPS_FIELDS.values())

    def __init__(self, roots_fn):
        super().__init__(daemon=True)
        self.roots_fn, self.stop = roots_fn, threading.Event()
        self.peak = {key: 0 for key in self.KEYS}
        self.at_rss_peak: dict[str, dict] = {}
        self.at_anon_peak: dict[str, dict] = {}
        self.role_peaks: dict[str, dict] = {}
        self.samples = 0

    def run(self):
        while not self.stop.is_set():
            self.sample()
            time.sleep(0.25)

    def sample(self) -> None:
        roots = self.roots_fn()
        parts = {role: server_memory_mb(pid) for role, pid in roots}
        total = {key: sum(part[key] for part in parts.values()) for key in self.KEYS}
        self.samples += 1
        if total["rss_mb"] > self.peak["rss_mb"]:
            self.at_rss_peak = {**parts, "sum": total}
        if total["anon_mb"] > self.peak["anon_mb"]:
            self.at_anon_peak = {**parts, "sum": total}
        self.peak = {key: max(self.peak[key], total[key]) for key in self.KEYS}
        for role, pid in roots:
            old = self.role_peaks.get(role, dict.fromkeys((*self.KEYS, "largest_hwm_mb"), 0))
            new = {**parts[role], "largest_hwm_mb": max(map(_hwm_mb, [pid, *children(pid)]))}
            self.role_peaks[role] = {key: max(old[key], new[key]) for key in old}


def _hwm_mb(pid: int) -> int:
    """One process's own peak RSS so far (VmHWM): catches a spike between two samples."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return 0


def _mapped_mb(pid: int, name: str) -> float:
    """Resident MB of the mappings of files called `name` in one process (/proc/<pid>/smaps)."""
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return 0.0
    kb, inside = 0, False
    for line in text.splitlines():
        head = line.split(maxsplit=1)[0]
        if not head.endswith(":") or "-" in head:  # a mapping's header line: "start-end perms ..."
            inside = line.rstrip().endswith("/" + name)
        elif inside and head == "Rss:":
            kb += int(line.split()[1])
    return round(kb / 1024)


def _memory_available_mb() -> int:
    """What search/residency.py's prefault rule sees (MemAvailable, or the cgroup's room)."""
    from search.residency import memory_available

    return memory_available() // 2**20


def _setup(args) -> tuple[Path, dict[str, str]]:
    data = OUT / f"load-{args.products}" / "data"
    data.mkdir(parents=True, exist_ok=True)
    model = _model_dir()
    env = app_env(data, MEEPO_CLIP_MODEL=str(model), MEEPO_INDEX_RELOAD_SECONDS="5",
                  WEB_CONCURRENCY=str(args.workers))  # fmt: skip
    return data, env


def _prepare_catalogue(args) -> dict:
    data, env = _setup(args)
    return prepare(args.products, env, data)


def run(args) -> dict:
    """Long: prepare, serve, load and measure in one sequence, as the run report reads."""
    data, env = _setup(args)
    catalogue = prepare(args.products, env, data)
    env.update(dict(item.split("=", 1) for item in args.env))
    mem_available = _memory_available_mb()  # search/residency.py prefaults vectors.npy below 25 %
    print(f"catalogue: {catalogue}", flush=True)
    if not args.no_pipeline:
        add = f"from tests.deploy.catalogue import add_products; add_products({args.fresh_images}, with_thumbnails={args.fresh_images})"  # fmt: skip
        _manage(env, "shell", "-c", add)

    stack = Stack(data_dir=data, env=env, search_rate="100000r/s").start()
    pipeline: subprocess.Popen | None = None
    pipeline_env = {**env, "MEEPO_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1"}

    def roots():
        yield ("web", stack.processes[0].pid)  # the gunicorn master and its workers
        yield ("nginx", stack.processes[1].pid)
        if pipeline is not None and pipeline.poll() is None:
            yield ("pipeline", pipeline.pid)  # bash, then manage.py embed / build_index

    sampler = MemorySampler(lambda: list(roots()))
    try:
        _warm_up(stack)
        workers_warm = _workers(stack)
        sampler.start()
        if not args.no_pipeline:
            # As the systemd unit runs it: nice, one torch thread, then a full rebuild.
            script = f"nice -n 10 {sys.executable} manage.py embed && nice -n 10 {sys.executable} manage.py build_index --force"  # fmt: skip
            pipeline = subprocess.Popen(["bash", "-c", script], cwd=ROOT, env=pipeline_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
            pipeline_started = time.monotonic()
        load = _wrk(stack, args)
        if load["errors"]:  # what the server said about them, before the stack's files go
            load["server_log_tail"] = stack.logs()[-6000:]
        pipeline_info = {}
        if pipeline is not None:
            output, _ = pipeline.communicate(timeout=3600)
            pipeline_info = {
                "seconds": round(time.monotonic() - pipeline_started, 1),
                "exit": pipeline.returncode,
                "last_lines": [
                    line for line in output.splitlines() if line.startswith(("embed", "index"))
                ][-3:],
            }
            if pipeline.returncode:
                pipeline_info["output_tail"] = output.splitlines()[-30:]
        sampler.stop.set()
        sampler.join()
        workers_after = _workers(stack)
        health = json.loads(http(f"{stack.base_url}/healthz")[2])
    finally:
        sampler.stop.set()
        if pipeline is not None and pipeline.poll() is None:
            pipeline.kill()
        stack.stop()
    return {
        "products": args.products,
        "duration_s": args.duration,
        "connections": args.connections,
        "workers": args.workers,
        "catalogue": catalogue,
        "load": load,
        "memory_peak": {
            **sampler.peak,
            "samples": sampler.samples,
            "by_role_at_rss_peak": sampler.at_rss_peak,
            "by_role_at_anon_peak": sampler.at_anon_peak,
            "role_peaks": sampler.role_peaks,
        },
        # Each worker alone, after warm-up and after the run: the vectors.npy column is its
        # resident share of the mapped vectors (page cache, in RSS and PSS, not anonymous).
        "web_workers": {"warm": workers_warm, "after": workers_after},
        "mem_available_mb_at_start": mem_available,
        "pipeline": pipeline_info,
        "index_after": health["index"]["info"],
    }


def _workers(stack) -> list[dict]:
    master = stack.processes[0].pid
    return [
        {
            **server_memory_mb(pid),
            "vectors_npy_mb": _mapped_mb(pid, "vectors.npy"),
        }
        for pid in stack.gunicorn_pids()
        if pid != master
    ]


def _warm_up(stack):
    """One request per worker thread: every worker has loaded its index before timing starts."""
    for q in ("red chair", "blue lamp", "striped pillow", "black shirt") * 4:
        status, _, _ = http(f"{stack.base_url}/search?q={q.replace(' ', '+')}", timeout=120)
        assert status == 200, status


def _wrk(stack, args) -> dict:
    script = OUT / "load-queries.lua"
    extra: list[str] = []
    if args.unique:  # every request a new query: encoder, index, keyword and hydration each time
        from urllib.parse import urlencode

        from bench.search_catalogue import unique_queries
        from bench.wrk import LUA as SLICED_LUA
        from bench.wrk import write_paths

        paths = [f"/search?{urlencode({'q': q})}" for q in unique_queries(args.unique, seed=3)]
        script.write_text(SLICED_LUA)
        extra = ["--", str(write_paths(OUT / "load-unique-paths.txt", paths)), str(args.threads)]
    else:
        from tests.deploy.catalogue import queries

        words = ", ".join(f'"{q.replace(" ", "+")}"' for q in queries())
        script.write_text(LUA % words)
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
               "--timeout", "10s", "-s", str(script), f"{stack.base_url}/", *extra]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    result["requests_per_s"] = round(result["requests"] / result["duration_s"], 1)
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    return result


def main():
    args = parse_args()
    limit = None
    if args.memory_limit:
        from bench import memory_limit

        # Catalogue building is not measured: enter the limit after it, around the serving.
        _prepare_catalogue(args)
        limit = memory_limit.enter(args.memory_limit)
    try:
        result = {**run(args), "machine": machine()}
    finally:
        cgroup = limit.report() if limit else None
        if limit:
            limit.leave()
    result["memory_limit"] = cgroup
    load, memory = result["load"], result["memory_peak"]
    print()
    print_table([{
        "products": args.products, "connections": args.connections, "req/s": load["requests_per_s"],
        "p50 ms": load["p50_ms"], "p90 ms": load["p90_ms"], "p99 ms": load["p99_ms"],
        "errors": load["errors"], "peak RSS MB": memory["rss_mb"], "peak PSS MB": memory["pss_mb"],
        "peak anon MB": memory["anon_mb"], "peak PSS anon MB": memory["pss_anon_mb"],
    }])  # fmt: skip
    print(f"at the RSS peak: {memory['by_role_at_rss_peak']}")
    print(f"each role's own peak: {memory['role_peaks']}")
    print(f"web workers (warm, after): {result['web_workers']}")
    if cgroup:
        print(f"cgroup (processes + page cache): {cgroup}")
    emit_json(result, args.json or str(OUT / f"load-{args.products}.json"))
    if load["errors"]:
        sys.exit(f"{load['errors']} failed requests")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
