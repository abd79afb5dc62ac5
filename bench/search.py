"""Search latency end to end: HTTP through gunicorn (deploy/gunicorn.conf.py) on 127.0.0.1 over a
synthetic catalogue, 8 concurrent clients sending unique text queries, then repeated ones.

Reports client-side p50/p90/p99 and the server's own split (encode / ann / db / render) read from
the `Server-Timing` header every search response carries, plus the same for repeated queries
(served from the per-process result cache) and for filtered queries.

    .venv/bin/python -m bench.search --products 100000
    .venv/bin/python -m bench.search --products 1000000 --requests 3000

The catalogue (bench/out/search-<N>/) is written with bulk SQL (FTS triggers included) and its
index is published from planted, clustered 512-d vectors by `bench.planted_index.publish_arrays` (the build stage's own code);
both are reused by later runs. The text encoder is a random-weight CLIP with the real ViT-B/32
shape, so encoding costs what the default model costs.

`--client wrk` (bench/wrk.py) sends the load from wrk instead of Python threads (a C client
that leaves the two cores to the server), one unique query per request from a query file, and
reports the server's CPU per request from /proc (the workers' utime + stime), p50/p90/p99 and
throughput, for unique, repeated and filtered searches, plus the bare int8 text forward pass
(torch and ONNX Runtime) measured in the same run and the ratio CPU per unique search / forward:

    .venv/bin/python -m bench.search --client wrk --products 1000000 --duration 30
    .venv/bin/python -m bench.search --client wrk --sweep 2x1,2x4,3x2,4x1 --phases unique

`--equality ENV=VALUE` serves 200 queries (a quarter of them filtered) one at a time from a
server with the default settings and from one with ENV=VALUE, and checks each page lists the
same product ids in the same order (HTML cards and /api/search ids, totals and facets):

    .venv/bin/python -m bench.search --equality MEEPO_SEARCH_SNAPSHOT=true
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit_json, machine, print_table
from bench.search_catalogue import (  # noqa: F401  (re-exported for the other benches)
    BRANDS,
    OUT,
    ROOT,
    _model_dir,
    app_env,
    prepare,
    unique_queries,
)
from bench.search_server import (  # noqa: F401  (re-exported)
    _env_pairs,
    _free_port,
    _server_env,
    load,
    parse_timing,
    start_gunicorn,
    stop_gunicorn,
)
from bench.search_wrk import main_wrk, measure_forward


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000, help="unique text queries")
    parser.add_argument("--repeat", type=int, default=400, help="requests re-using 40 queries")
    parser.add_argument("--filtered", type=int, default=400, help="unique queries with filters")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--single", type=int, default=200, help="unique queries from 1 client")
    parser.add_argument("--quantize", action="store_true", help="MEEPO_CLIP_QUANTIZE=on (int8; python client, whose default stays fp32)")  # fmt: skip
    parser.add_argument("--client", choices=["python", "wrk"], default="python")
    parser.add_argument("--duration", type=int, default=30, help="wrk: seconds per phase")
    parser.add_argument("--warm", type=int, default=20, help="wrk: seconds of unmeasured unique searches first")  # fmt: skip
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (WEB_CONCURRENCY)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, help="threads per worker (GUNICORN_THREADS)")  # fmt: skip
    parser.add_argument("--sweep", help="wrk: workers x threads to compare, e.g. 2x1,2x4,3x2,4x1")
    parser.add_argument("--phases", default="unique,repeated,filtered,brand", help="wrk: phases (unique, repeated, filtered = brand + in stock, brand)")  # fmt: skip
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="server setting (repeatable)")  # fmt: skip
    parser.add_argument("--equality", metavar="KEY=VALUE", help="compare 200 queries' results with this setting against the default")  # fmt: skip
    parser.add_argument("--equality-queries", type=int, default=200)
    parser.add_argument("--forward-queries", type=int, default=100, help="wrk: bare forward passes timed")  # fmt: skip
    parser.add_argument("--forward-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the JSON result here")
    return parser.parse_args()


def _page_ids(port: int, path: str) -> dict:
    import re

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path)
    resp = conn.getresponse()
    html = resp.read()
    conn.request("GET", "/api" + path)
    api = conn.getresponse()
    body = json.loads(api.read())
    return {
        "status": (resp.status, api.status),
        "html_ids": [int(m) for m in re.findall(rb'data-product-id="(\d+)"', html)],
        "api_ids": [r["id"] for r in body.get("results", [])],
        "total": body.get("total"),
        "facets": body.get("facets"),
    }


def _brief(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "facets"}


def main_equality(args, env: dict[str, str], info: dict) -> None:
    """Same queries, one at a time, against the default settings and against --equality."""
    from urllib.parse import urlencode

    extra = _env_pairs(args.env)
    other = _env_pairs([args.equality])
    queries = unique_queries(args.equality_queries, seed=123)
    rng = random.Random(9)
    paths = [
        "/search?" + urlencode({"q": q, "brand": rng.choice(BRANDS)} if i % 4 == 3 else {"q": q})
        for i, q in enumerate(queries)
    ]
    answers = []
    for setting in ({}, other):
        port = _free_port()
        server = start_gunicorn(_server_env(env, 1, 1, {**extra, **setting}), port)
        try:
            answers.append([_page_ids(port, p) for p in paths])
        finally:
            stop_gunicorn(server)
    differ = [
        {"path": p, "fields": [k for k in a if a[k] != b[k]], "a": _brief(a), "b": _brief(b)}
        for p, a, b in zip(paths, *answers, strict=True)
        if a != b
    ]
    same = len(paths) - len(differ)
    print(f"results equality, default vs {args.equality}: {same} / {len(paths)} pages identical (HTML card ids in order, API ids, totals, facets)")  # fmt: skip
    for d in differ[:10]:
        print("DIFFERS", d)
    emit_json({"bench": "search", "mode": "equality", "products": args.products, "setting": other, "queries": len(paths), "identical": same, "differ": differ, "catalogue": info, "machine": machine()}, args.json)  # fmt: skip
    if differ:
        sys.exit(1)


def main() -> None:
    args = parse_args()
    if args.forward_only:
        print(json.dumps(measure_forward(args.forward_queries)))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    model = _model_dir()
    data = OUT / f"search-{args.products}"
    env = app_env(data, model)
    info = prepare(args.products, data, env)
    if args.equality:
        return main_equality(args, env, info)
    if args.client == "wrk":
        return main_wrk(args, env, info)
    main_python(args, env, info)


def python_paths(args) -> dict[str, list[str]]:
    """The Python client's request paths by phase: unique from one client, unique from all,
    40 queries repeated, filtered (brand + in stock)."""
    from urllib.parse import urlencode

    queries = unique_queries(args.requests + args.filtered + args.single, seed=1)
    single = [f"/search?{urlencode({'q': q})}" for q in queries[-args.single :]]
    queries = queries[: args.requests + args.filtered]
    repeat_set = queries[:40]
    rng = random.Random(5)
    return {
        "single": single,
        "unique": [f"/search?{urlencode({'q': q})}" for q in queries[: args.requests]],
        "repeated": [f"/search?{urlencode({'q': repeat_set[i % 40]})}" for i in range(args.repeat)],
        "filtered": [
            "/search?" + urlencode({"q": q, "brand": rng.choice(BRANDS), "in_stock": "on"})
            for q in queries[args.requests :]
        ],
    }


def main_python(args, env: dict[str, str], info: dict) -> None:
    """The Python keep-alive client's phases against one gunicorn."""
    from urllib.parse import urlencode

    # the Python client keeps its historical setting (fp32 unless --quantize)
    env["MEEPO_CLIP_QUANTIZE"] = "on" if args.quantize else "off"
    env["MEEPO_CLIP_TEXT_RUNTIME"] = "torch"
    env.update(_env_pairs(args.env))
    port = _free_port()
    server = start_gunicorn(env, port)
    try:
        warm = [f"/search?{urlencode({'q': q})}" for q in unique_queries(40, seed=99)]
        load(port, warm, args.clients)  # model, index and DB pages in every worker
        paths = python_paths(args)
        phases = {
            "unique, 1 client (no queueing)": load(port, paths["single"], 1),
            f"unique, {args.clients} clients": load(port, paths["unique"], args.clients),
            "repeated (cache)": load(port, paths["repeated"], args.clients),
            "filtered (brand + in stock)": load(port, paths["filtered"], args.clients),
        }
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    rows = [
        {
            "phase": name,
            **{k: v for k, v in r.items() if k != "mean_split_ms"},
            **r["mean_split_ms"],
        }
        for name, r in phases.items()
    ]
    print(f"search bench: {args.products} products, quantize={args.quantize}, catalogue {info}")
    print_table(rows)
    emit_json({"bench": "search", "products": args.products, "clients": args.clients, "quantize": args.quantize, "catalogue": info, "phases": phases, "machine": machine()}, args.json)  # fmt: skip


if __name__ == "__main__":
    main()
