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
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

from bench.common import emit_json, machine, percentiles, print_table, random_vit_b32  # noqa: E402

COLOURS = ["red", "green", "blue", "black", "white", "grey", "navy", "salmon", "yellow", "orange", "pink", "purple", "brown", "beige", "gold", "silver", "teal", "olive"]  # fmt: skip
MATERIALS = ["wooden", "ceramic", "glass", "steel", "linen", "cotton", "wool", "leather", "velvet", "bamboo", "marble", "brass", "copper", "enamel", "stoneware", "rattan"]  # fmt: skip
NOUNS = ["chair", "table", "lamp", "vase", "mug", "cushion", "pillow", "rug", "fork", "spoon", "plate", "bowl", "kettle", "basket", "mirror", "clock", "shelf", "stool", "blanket", "curtain", "jug", "candle"]  # fmt: skip
STYLES = ["striped", "fluffy", "vintage", "modern", "rustic", "minimal", "round", "square", "tall", "small", "large", "soft", "shiny", "matte", "floral", "dotted"]  # fmt: skip
BRANDS = [f"Brand{n:03d}" for n in range(200)]
CATEGORIES = ["Living room", "Kitchen", "Bedroom", "Lighting", "Dining", "Bathroom", "Garden", "Office"]  # fmt: skip
DIM = 512
CLUSTERS = 256


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


def _model_dir() -> Path:
    return random_vit_b32(OUT)


def app_env(data: Path, model: Path) -> dict[str, str]:
    return {
        "PATH": f"{ROOT / '.venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "meepo.settings",
        "MEEPO_DATA_DIR": str(data),
        "MEEPO_SECRET_KEY": secrets.token_urlsafe(50),
        "MEEPO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "MEEPO_LOG_LEVEL": "WARNING",
        "MEEPO_CLIP_MODEL": str(model),
        "HF_HUB_OFFLINE": "1",
    }


def _manage(env, *args):
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)  # fmt: skip


def title(rng: random.Random) -> tuple[str, int]:
    """A product title and the cluster its planted vector belongs to (its noun + colour)."""
    colour, noun = rng.randrange(len(COLOURS)), rng.randrange(len(NOUNS))
    words = [rng.choice(STYLES), COLOURS[colour], rng.choice(MATERIALS), NOUNS[noun]]
    return " ".join(words).capitalize(), (colour * len(NOUNS) + noun) % CLUSTERS


def write_catalogue(db: Path, n: int) -> np.ndarray:
    """Stores, products, assets, images by bulk SQL; returns each image's cluster."""
    rng = random.Random(0)
    now = datetime.now(UTC).isoformat(sep=" ")
    con = sqlite3.connect(db)
    con.execute("PRAGMA synchronous=OFF")
    stores = [
        (f"Store {s}", f"store-{s}", f"https://store{s}.example", "shopify") for s in range(20)
    ]
    con.executemany(
        "INSERT INTO catalog_store (name, slug, base_url, platform, contact_email, is_active, "
        "offpeak_mode, allow_long_crawl_delay, extra_hosts, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, '', 1, 'wait', 0, '', ?, ?)",
        [(*s, now, now) for s in stores],
    )
    clusters = np.zeros(n, dtype=np.int64)
    placeholder = "data:image/jpeg;base64," + "A" * 300
    batch = 20_000
    for start in range(0, n, batch):
        products, assets, images = [], [], []
        for i in range(start, min(n, start + batch)):
            text, clusters[i] = title(rng)
            pid = i + 1
            avail = "in_stock" if rng.random() < 0.7 else "out_of_stock"
            products.append((pid, pid % 20 + 1, f"sku-{pid}", f"https://store{pid % 20}.example/p/{pid}", text, f"{text}. Lovely for any home.", rng.choice(BRANDS), rng.choice(CATEGORIES), "[]", round(rng.uniform(3, 500), 2), "EUR", avail, now, now, 1, "", now, now))  # fmt: skip
            sha = f"{pid:064x}"
            assets.append((pid, sha, 512, 512, "JPEG", 20000, f"thumbs/{sha[:2]}/{sha[2:4]}/{sha}.jpg", placeholder, now, now))  # fmt: skip
            images.append((pid, pid, f"https://cdn.example/{pid}.jpg", 0, pid, 0, "ok", "", 1, now, now))  # fmt: skip
        con.executemany(
            "INSERT INTO catalog_product (id, store_id, external_id, url, title, description, brand, "
            "category, tags, price, currency, availability, first_seen_at, last_seen_at, is_active, "
            "content_hash, created_at, updated_at, field_sources, gtin, mpn, sku) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'{}','','','')",
            products,
        )
        con.executemany(
            "INSERT INTO catalog_imageasset (id, sha256, width, height, format, byte_size, thumbnail, "
            "placeholder, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            assets,
        )
        con.executemany(
            "INSERT INTO catalog_productimage (id, product_id, source_url, position, asset_id, "
            "is_shared, fetch_status, fetch_error, fetch_attempts, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            images,
        )
        con.commit()
    con.close()
    return clusters


def planted_vectors(clusters: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(CLUSTERS, DIM)).astype(np.float32)
    out = np.empty((len(clusters), DIM), dtype=np.float32)
    for start in range(0, len(clusters), 100_000):
        part = clusters[start : start + 100_000]
        v = centres[part] + rng.normal(0, 1.2, size=(len(part), DIM)).astype(np.float32)
        out[start : start + len(part)] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def _adopt_index(data: Path, model: str) -> None:
    """A catalogue built from another checkout names that checkout's model directory in its
    manifest, and the site would refuse the index (visual search off: keyword-only numbers).
    The vectors are planted, not the model's, so the manifest is pointed at this model."""
    manifest = data / "index" / "current" / "manifest.json"
    if not manifest.is_file():
        return
    meta = json.loads(manifest.read_text())
    if meta.get("model") != model:
        print(f"bench: index manifest named {meta.get('model')!r}; now {model!r}", file=sys.stderr)
        meta["model"] = model
        manifest.write_text(json.dumps(meta, indent=2))


def prepare(n: int, data: Path, env: dict[str, str]) -> dict:
    done = data / "catalogue.json"
    if done.is_file():
        _manage(env, "migrate", "--noinput")  # the code may have moved on since it was built
        _adopt_index(data, env["MEEPO_CLIP_MODEL"])
        return json.loads(done.read_text())
    data.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    _manage(env, "migrate", "--noinput")
    _manage(env, "collectstatic", "--noinput")
    clusters = write_catalogue(data / "db.sqlite3", n)
    t1 = time.monotonic()
    code = (
        "import numpy as np, sys; from bench.planted_index import publish_arrays; "
        "from django.conf import settings; v = np.load(sys.argv[1]); "
        "publish_arrays(np.arange(1, len(v) + 1, dtype=np.int64), v, model=settings.MEEPO_CLIP_MODEL)"
    )
    vec_file = data / "planted.npy"
    np.save(vec_file, planted_vectors(clusters))
    run = [sys.executable, "-c", f"import django; django.setup(); exec({code!r})", str(vec_file)]
    subprocess.run(run, cwd=ROOT, env=env, check=True)
    vec_file.unlink()
    info = {"products": n, "catalogue_s": round(t1 - t0, 1), "index_s": round(time.monotonic() - t1, 1)}  # fmt: skip
    manifest = json.loads((data / "index" / "current" / "manifest.json").read_text())
    info["index"] = {k: manifest.get(k) for k in ("index_type", "params", "recall_at_10")}
    done.write_text(json.dumps(info))
    return info


def unique_queries(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    seen: set[str] = set()
    while len(seen) < count:
        words = [rng.choice(STYLES), rng.choice(COLOURS), rng.choice(NOUNS)]
        if rng.random() < 0.5:
            words.insert(2, rng.choice(MATERIALS))
        if rng.random() < 0.3:
            words.append(f"for {rng.choice(['kids', 'home', 'garden', 'gift', 'office'])}")
        seen.add(" ".join(words))
    return sorted(seen, key=lambda _: rng.random())


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


def start_gunicorn(env: dict[str, str], port: int) -> subprocess.Popen:
    command = [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}"]  # fmt: skip
    log = open(OUT / "search-gunicorn.log", "w")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
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


def wrk_phases(args, env: dict[str, str], phases: list[str]) -> dict:
    """One server configuration under wrk: each phase's latency, throughput and CPU/request."""
    from urllib.parse import urlencode

    from bench import wrk

    port = _free_port()
    server = start_gunicorn(env, port)
    workers = int(env.get("WEB_CONCURRENCY", 2))
    out: dict = {}
    try:
        # model, index and database pages in every worker: a few searches, then --warm seconds
        # of unique ones through wrk (not counted), so first-request costs stay out of phases
        _warm(port, [f"/search?{urlencode({'q': q})}" for q in unique_queries(16, seed=99)], 1, 2)
        if args.warm:
            warm = [f"/search?{urlencode({'q': q})}" for q in unique_queries(5000, seed=98)]
            out["warm"] = wrk.run_wrk(
                port, wrk.write_paths(OUT / "wrk-warm.txt", warm), master=server.pid,
                duration=args.warm, connections=args.clients, script_dir=OUT,
            )  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/healthz")
        health = json.loads(conn.getresponse().read())
        if health["status"] != "ok":  # e.g. an index for another model: keyword-only numbers
            raise SystemExit(f"server not fully ready, refusing to measure: {health}")
        out["encoder"] = health["model"]["info"]["encoder"]
        # enough unique queries for the phase at ~4x the throughput goal
        count = max(2000, 500 * args.duration)
        queries = unique_queries(2 * count + 40, seed=int(time.time()) % 100_000)
        rng = random.Random(5)
        files = {
            "unique": [f"/search?{urlencode({'q': q})}" for q in queries[:count]],
            "repeated": [f"/search?{urlencode({'q': q})}" for q in queries[-40:]],
            "filtered": [
                "/search?" + urlencode({"q": q, "brand": rng.choice(BRANDS), "in_stock": "on"})
                for q in queries[count : 2 * count]
            ],
            # brand alone: answered by the snapshot; in stock is read from the database
            "brand": [
                "/search?" + urlencode({"q": q, "brand": rng.choice(BRANDS)})
                for q in queries[count : 2 * count][::-1]
            ],
        }
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


def main_wrk(args, env: dict[str, str], info: dict) -> None:
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
    # the Python client keeps its historical setting (fp32 unless --quantize)
    env["MEEPO_CLIP_QUANTIZE"] = "on" if args.quantize else "off"
    env["MEEPO_CLIP_TEXT_RUNTIME"] = "torch"
    env.update(_env_pairs(args.env))
    port = _free_port()
    server = start_gunicorn(env, port)
    try:
        from urllib.parse import urlencode

        warm = [f"/search?{urlencode({'q': q})}" for q in unique_queries(40, seed=99)]
        load(port, warm, args.clients)  # model, index and DB pages in every worker
        queries = unique_queries(args.requests + args.filtered + args.single, seed=1)
        single = [f"/search?{urlencode({'q': q})}" for q in queries[-args.single :]]
        queries = queries[: args.requests + args.filtered]
        unique = [f"/search?{urlencode({'q': q})}" for q in queries[: args.requests]]
        repeat_set = queries[:40]
        repeated = [f"/search?{urlencode({'q': repeat_set[i % 40]})}" for i in range(args.repeat)]
        rng = random.Random(5)
        filtered = [
            "/search?" + urlencode({"q": q, "brand": rng.choice(BRANDS), "in_stock": "on"})
            for q in queries[args.requests :]
        ]
        phases = {
            "unique, 1 client (no queueing)": load(port, single, 1),
            f"unique, {args.clients} clients": load(port, unique, args.clients),
            "repeated (cache)": load(port, repeated, args.clients),
            "filtered (brand + in stock)": load(port, filtered, args.clients),
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
