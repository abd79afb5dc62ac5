"""bench/search's `--client wrk` mode (bench/wrk.py sends the load): per server configuration,
unique, repeated, filtered and brand-only phases with the workers' CPU per request from /proc,
beside the bare int8 text forward pass measured in the same run (`measure_forward`, in its own
process through `python -m bench.search --forward-only`)."""

from __future__ import annotations

import http.client
import json
import random
import subprocess
import sys
import time
from urllib.parse import urlencode

from bench import wrk
from bench.common import emit_json, machine, print_table
from bench.search_catalogue import BRANDS, OUT, ROOT, unique_queries
from bench.search_server import (
    _env_pairs,
    _free_port,
    _server_env,
    _warm,
    start_gunicorn,
    stop_gunicorn,
)


def measure_forward(n: int) -> dict:
    """The bare int8 text forward pass (the floor of a unique search), torch and ONNX Runtime,
    and the served encoder's whole `encode_texts`; CPU ms per query, one thread, batch 1.
    Runs in its own process (`--forward-only`) with the server's settings."""
    import statistics

    import django
    import torch

    django.setup()
    from django.conf import settings

    from search.encoder import get_encoder, load_encoder

    torch.set_num_threads(1)
    name = settings.MEEPO_CLIP_MODEL
    tint8 = load_encoder(name, "cpu", "on", 1, settings.MEEPO_CLIP_PARITY_MIN, "torch")
    oint8 = load_encoder(name, "cpu", "on", 1, settings.MEEPO_CLIP_PARITY_MIN, "onnx")
    served = get_encoder()
    cpu: dict[str, list[float]] = {"torch int8 forward": [], "onnx int8 forward": [], "served encode_texts": []}  # fmt: skip
    for query in unique_queries(n, seed=77):
        tokens = tint8.tokenize([query])
        start = time.process_time()
        with torch.inference_mode():
            tint8.model.get_text_features(**tokens)
        mid = time.process_time()
        if oint8.onnx_text is not None:
            oint8.onnx_text.run(tokens)
        end = time.process_time()
        served.encode_texts([query + " x"])
        done = time.process_time()
        cpu["torch int8 forward"].append((mid - start) * 1000)
        if oint8.onnx_text is not None:
            cpu["onnx int8 forward"].append((end - mid) * 1000)
        cpu["served encode_texts"].append((done - end) * 1000)
    return {
        "median_cpu_ms": {k: round(statistics.median(v), 2) for k, v in cpu.items() if v},
        "served": served.describe(),
        "onnx": oint8.describe(),
    }


def forward_in_subprocess(env: dict[str, str], n: int) -> dict:
    run = [sys.executable, "-m", "bench.search", "--forward-only", "--forward-queries", str(n)]
    out = subprocess.run(run, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def phase_paths(duration: int) -> dict[str, list[str]]:
    """Request paths per wrk phase: enough unique queries for a phase at ~4x the throughput
    goal, 40 repeated ones, filtered (brand + in stock) and brand alone (answered by the
    snapshot; in stock is read from the database)."""
    count = max(2000, 500 * duration)
    queries = unique_queries(2 * count + 40, seed=int(time.time()) % 100_000)
    rng = random.Random(5)
    return {
        "unique": [f"/search?{urlencode({'q': q})}" for q in queries[:count]],
        "repeated": [f"/search?{urlencode({'q': q})}" for q in queries[-40:]],
        "filtered": [
            "/search?" + urlencode({"q": q, "brand": rng.choice(BRANDS), "in_stock": "on"})
            for q in queries[count : 2 * count]
        ],
        "brand": [
            "/search?" + urlencode({"q": q, "brand": rng.choice(BRANDS)})
            for q in queries[count : 2 * count][::-1]
        ],
    }


def warm_server(args, port: int, master: int) -> dict | None:
    """Model, index and database pages in every worker: a few searches, then --warm seconds of
    unique ones through wrk (not counted), so first-request costs stay out of the phases.
    Refuses to go on unless /healthz says ok. Returns the warm-up's wrk result and the encoder."""
    _warm(port, [f"/search?{urlencode({'q': q})}" for q in unique_queries(16, seed=99)], 1, 2)
    out: dict = {}
    if args.warm:
        warm = [f"/search?{urlencode({'q': q})}" for q in unique_queries(5000, seed=98)]
        out["warm"] = wrk.run_wrk(
            port, wrk.write_paths(OUT / "wrk-warm.txt", warm), master=master,
            duration=args.warm, connections=args.clients, script_dir=OUT,
        )  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/healthz")
    health = json.loads(conn.getresponse().read())
    if health["status"] != "ok":  # e.g. an index for another model: keyword-only numbers
        raise SystemExit(f"server not fully ready, refusing to measure: {health}")
    out["encoder"] = health["model"]["info"]["encoder"]
    return out


def wrk_phases(args, env: dict[str, str], phases: list[str]) -> dict:
    """One server configuration under wrk: each phase's latency, throughput and CPU/request."""
    port = _free_port()
    server = start_gunicorn(env, port)
    workers = int(env.get("WEB_CONCURRENCY", 2))
    try:
        out = warm_server(args, port, server.pid)
        files = phase_paths(args.duration)
        for phase in phases:
            if phase == "repeated":  # every worker has each of the 40 pages cached
                _warm(port, files[phase], 4 * workers, 8)
            paths = wrk.write_paths(OUT / f"wrk-{phase}.txt", files[phase])
            out[phase] = wrk.run_wrk(
                port, paths, master=server.pid, duration=args.duration,
                connections=args.clients, script_dir=OUT,
            )  # fmt: skip
        out["memory"] = wrk.server_memory_mb(server.pid)
    finally:
        stop_gunicorn(server)
    return out


def wrk_rows(runs: list[dict], floor: dict) -> list[dict]:
    """The table rows of every configuration's phases (CPU per request beside the bare forward
    pass); moves encoder, warm-up and memory out of each run's phases and adds its filtered /
    unique and brand / unique CPU ratios."""
    rows = []
    for run in runs:
        run["encoder"] = run["phases"].pop("encoder")
        run["warm"] = run["phases"].pop("warm", None)
        run["memory"] = run["phases"].pop("memory", None)
        for phase, r in run["phases"].items():
            cpu = r["server_cpu_ms_per_request"]
            rows.append({
                "workers x threads": f"{run['workers']}x{run['threads']}", "phase": phase,
                "req": r["requests"], "err": r["errors"], "req/s": r["rps"],
                "p50": r["p50_ms"], "p90": r["p90_ms"], "p99": r["p99_ms"],
                "CPU ms/req": cpu, "cores busy": r["server_cores_busy"],
                "x torch int8 fwd": round(cpu / floor["torch int8 forward"], 2),
                "x onnx int8 fwd": round(cpu / floor["onnx int8 forward"], 2) if "onnx int8 forward" in floor else None,
                "wrapped": r["wrapped"],
            })  # fmt: skip
        for name in ("filtered", "brand"):
            if {"unique", name} <= run["phases"].keys():
                u = run["phases"]["unique"]["server_cpu_ms_per_request"]
                run[f"{name}_over_unique_cpu"] = round(run["phases"][name]["server_cpu_ms_per_request"] / u, 2)  # fmt: skip
    return rows


def main_wrk(args, env: dict[str, str], info: dict) -> None:
    """--client wrk: every --sweep configuration (or the one given), then the forward pass."""
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    extra = _env_pairs(args.env)
    configs = (
        [tuple(int(x) for x in c.split("x")) for c in args.sweep.split(",")]
        if args.sweep
        else [(args.workers, args.threads)]
    )
    runs = []
    for workers, threads in configs:
        senv = _server_env(env, workers, threads, extra)
        result = wrk_phases(args, senv, phases)
        runs.append({"workers": senv.get("WEB_CONCURRENCY", "2 (conf)"), "threads": senv.get("GUNICORN_THREADS", "4 (conf)"), "phases": result})  # fmt: skip
    forward = forward_in_subprocess(_server_env(env, None, None, extra), args.forward_queries)
    floor = forward["median_cpu_ms"]
    rows = wrk_rows(runs, floor)
    print(f"search bench (wrk, {args.clients} connections, {args.duration} s a phase): {args.products} products, settings {extra or 'defaults'}, catalogue {info}")  # fmt: skip
    print_table(rows)
    print("bare text forward, median CPU ms (same run):", floor)
    print("encoder in a worker (/healthz):", runs[0]["encoder"])
    for run in runs:
        print(
            f"{run['workers']}x{run['threads']}: gunicorn memory after the phases {run['memory']}"
        )
    for run in runs:
        for name in ("filtered", "brand"):
            if f"{name}_over_unique_cpu" in run:
                print(f"{run['workers']}x{run['threads']}: {name} / unique CPU per request = {run[f'{name}_over_unique_cpu']}")  # fmt: skip
    emit_json({"bench": "search", "client": "wrk", "products": args.products, "connections": args.clients, "duration_s": args.duration, "settings": extra, "catalogue": info, "runs": runs, "rows": rows, "forward": forward, "machine": machine()}, args.json)  # fmt: skip
