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
    parser.add_argument("--quantize", action="store_true", help="MEEPO_CLIP_QUANTIZE=true (int8)")
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


def prepare(n: int, data: Path, env: dict[str, str]) -> dict:
    done = data / "catalogue.json"
    if done.is_file():
        _manage(env, "migrate", "--noinput")  # the code may have moved on since it was built
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
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
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


def main() -> None:
    args = parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    model = _model_dir()
    data = OUT / f"search-{args.products}"
    env = app_env(data, model)
    env["MEEPO_CLIP_QUANTIZE"] = "true" if args.quantize else "false"
    info = prepare(args.products, data, env)
    port = random.randint(20000, 40000)
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
