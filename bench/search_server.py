"""bench/search's server side: gunicorn (deploy/gunicorn.conf.py) on a free 127.0.0.1 port, the
Python keep-alive load client, and the `Server-Timing` split each search response carries."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

from bench.common import percentiles
from bench.search_catalogue import OUT, ROOT


def parse_timing(header: str) -> dict[str, float]:
    out = {}
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if dur:
            out[name] = float(dur)
    return out


def load(port: int, paths: list[str], clients: int) -> dict:
    """Send `paths` from `clients` keep-alive connections; latency and server split per request."""
    lock, todo = threading.Lock(), list(reversed(paths))
    results: list[tuple[float, dict[str, float], int]] = []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not todo:
                    break
                path = todo.pop()
            t0 = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            ms = (time.perf_counter() - t0) * 1000
            with lock:
                results.append((ms, parse_timing(resp.getheader("Server-Timing", "")), resp.status))

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    lat = [r[0] for r in results]
    split = {}
    for stage in ("encode", "ann", "db", "render"):
        split[stage] = round(float(np.mean([r[1].get(stage, 0.0) for r in results])), 2)
    return {
        "requests": len(results),
        "errors": sum(r[2] != 200 for r in results),
        "rps": round(len(results) / wall, 1),
        **{k: round(v, 1) for k, v in percentiles(lat).items()},
        "p90": round(float(np.percentile(lat, 90)), 1),
        "mean_split_ms": split,
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env_pairs(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--env/--equality take KEY=VALUE, not {pair!r}")
        out[key] = value
    return out


def start_gunicorn(env: dict[str, str], port: int) -> subprocess.Popen:
    # MEEPO_BENCH_CODE_ROOT serves the same catalogue from another checkout (an older commit):
    # `--equality MEEPO_BENCH_CODE_ROOT=/tmp/old` compares two versions of the code, `--env` the
    # same times the old code's server in the same run as the new one.
    root = Path(env.get("MEEPO_BENCH_CODE_ROOT") or ROOT)
    command = [str(root / ".venv" / "bin" / "gunicorn"), "-c", str(root / "deploy" / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}"]  # fmt: skip
    log = open(OUT / "search-gunicorn.log", "w")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status in (200, 503):
                return proc
        except OSError:
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit("gunicorn did not start; see bench/out/search-gunicorn.log")


def stop_gunicorn(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(60)


def _server_env(
    base: dict[str, str], workers: int | None, threads: int | None, extra: dict
) -> dict:
    env = {**base, **extra}
    if workers:
        env["WEB_CONCURRENCY"] = str(workers)
    if threads:
        env["GUNICORN_THREADS"] = str(threads)
    return env


def _warm(port: int, paths: list[str], times: int, clients: int) -> None:
    load(port, paths * times, clients)
