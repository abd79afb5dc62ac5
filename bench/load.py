"""Load benchmark: wrk against nginx -> gunicorn on 127.0.0.1, over a synthetic catalogue, while
a pipeline run (embed new images, then a full index rebuild) works beside the web workers.

Reports requests/s, latency p50/p90/p99, errors (must be 0), and the whole stack's peak memory
(gunicorn master + workers + nginx + the pipeline process), both as summed RSS (counts pages
shared copy-on-write once per process: an upper bound) and as summed PSS (shares them out).

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
    """Peak summed RSS and PSS of the stack's processes, sampled every 0.25 s."""

    def __init__(self, pids_fn):
        super().__init__(daemon=True)
        self.pids_fn, self.stop = pids_fn, threading.Event()
        self.peak = {"rss_mb": 0.0, "pss_mb": 0.0, "processes": 0}
        self.peak_parts: dict[str, float] = {}

    def run(self):
        while not self.stop.is_set():
            parts, rss, pss, n = {}, 0.0, 0.0, 0
            for role, pid in self.pids_fn():
                r, p = _memory(pid)
                rss, pss, n = rss + r, pss + p, n + (r > 0)
                parts[role] = parts.get(role, 0.0) + r
            if rss > self.peak["rss_mb"]:
                self.peak = {"rss_mb": round(rss), "pss_mb": round(pss), "processes": n}
                self.peak_parts = {k: round(v) for k, v in parts.items()}
            time.sleep(0.25)


def _memory(pid: int) -> tuple[float, float]:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0, 0.0
    values = {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines()[1:]}
    return values.get("Rss", 0) / 1024, values.get("Pss", 0) / 1024


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    result = [int(k) for k in kids]
    for kid in list(result):
        result += _children(kid)
    return result


def run(args) -> dict:
    """Long: prepare, serve, load and measure in one sequence, as the run report reads."""
    data = OUT / f"load-{args.products}" / "data"
    data.mkdir(parents=True, exist_ok=True)
    model = _model_dir()
    env = app_env(data, MEEPO_CLIP_MODEL=str(model), MEEPO_INDEX_RELOAD_SECONDS="5",
                  WEB_CONCURRENCY=str(args.workers))  # fmt: skip
    catalogue = prepare(args.products, env, data)
    print(f"catalogue: {catalogue}", flush=True)
    if not args.no_pipeline:
        add = f"from tests.deploy.catalogue import add_products; add_products({args.fresh_images}, with_thumbnails={args.fresh_images})"  # fmt: skip
        _manage(env, "shell", "-c", add)

    stack = Stack(data_dir=data, env=env, search_rate="100000r/s").start()
    pipeline: subprocess.Popen | None = None
    pipeline_env = {**env, "MEEPO_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1"}

    def pids():
        nginx = stack.processes[1].pid
        yield from (("web", pid) for pid in stack.gunicorn_pids())
        yield from (("nginx", pid) for pid in [nginx, *_children(nginx)])
        if pipeline is not None and pipeline.poll() is None:
            yield from (("pipeline", pid) for pid in [pipeline.pid, *_children(pipeline.pid)])

    sampler = MemorySampler(lambda: list(pids()))
    try:
        _warm_up(stack)
        sampler.start()
        if not args.no_pipeline:
            # As the systemd unit runs it: nice, one torch thread, then a full rebuild.
            script = f"nice -n 10 {sys.executable} manage.py embed && nice -n 10 {sys.executable} manage.py build_index --force"  # fmt: skip
            pipeline = subprocess.Popen(["bash", "-c", script], cwd=ROOT, env=pipeline_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
            pipeline_started = time.monotonic()
        load = _wrk(stack, args)
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
        sampler.stop.set()
        sampler.join()
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
        "memory_peak": {**sampler.peak, "by_role_rss_mb": sampler.peak_parts},
        "pipeline": pipeline_info,
        "index_after": health["index"]["info"],
    }


def _warm_up(stack):
    """One request per worker thread: every worker has loaded its index before timing starts."""
    for q in ("red chair", "blue lamp", "striped pillow", "black shirt") * 4:
        status, _, _ = http(f"{stack.base_url}/search?q={q.replace(' ', '+')}", timeout=120)
        assert status == 200, status


def _wrk(stack, args) -> dict:
    from tests.deploy.catalogue import queries

    script = OUT / "load-queries.lua"
    words = ", ".join(f'"{q.replace(" ", "+")}"' for q in queries())
    script.write_text(LUA % words)
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
               "--timeout", "10s", "-s", str(script), f"{stack.base_url}/"]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    result["requests_per_s"] = round(result["requests"] / result["duration_s"], 1)
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    return result


def main():
    args = parse_args()
    result = {**run(args), "machine": machine()}
    load, memory = result["load"], result["memory_peak"]
    print()
    print_table([{
        "products": args.products, "connections": args.connections, "req/s": load["requests_per_s"],
        "p50 ms": load["p50_ms"], "p90 ms": load["p90_ms"], "p99 ms": load["p99_ms"],
        "errors": load["errors"], "peak RSS MB": memory["rss_mb"], "peak PSS MB": memory["pss_mb"],
    }])  # fmt: skip
    emit_json(result, args.json or str(OUT / f"load-{args.products}.json"))
    if load["errors"]:
        sys.exit(f"{load['errors']} failed requests")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
