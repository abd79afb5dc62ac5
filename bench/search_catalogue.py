"""bench/search's catalogue: a synthetic store catalogue written by bulk SQL (FTS triggers
included) under bench/out/search-<N>/, its index published from planted, clustered 512-d vectors
by `bench.planted_index.publish_arrays` (the build stage's own code), and the query vocabulary.
Both are built on first use and reused by later runs (bench.search, bench.search_cpu,
bench.render, bench.onnx_text)."""

from __future__ import annotations

import json
import os
import random
import secrets
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

from bench.common import random_vit_b32  # noqa: E402

COLOURS = ["red", "green", "blue", "black", "white", "grey", "navy", "salmon", "yellow", "orange", "pink", "purple", "brown", "beige", "gold", "silver", "teal", "olive"]  # fmt: skip
MATERIALS = ["wooden", "ceramic", "glass", "steel", "linen", "cotton", "wool", "leather", "velvet", "bamboo", "marble", "brass", "copper", "enamel", "stoneware", "rattan"]  # fmt: skip
NOUNS = ["chair", "table", "lamp", "vase", "mug", "cushion", "pillow", "rug", "fork", "spoon", "plate", "bowl", "kettle", "basket", "mirror", "clock", "shelf", "stool", "blanket", "curtain", "jug", "candle"]  # fmt: skip
STYLES = ["striped", "fluffy", "vintage", "modern", "rustic", "minimal", "round", "square", "tall", "small", "large", "soft", "shiny", "matte", "floral", "dotted"]  # fmt: skip
BRANDS = [f"Brand{n:03d}" for n in range(200)]
CATEGORIES = ["Living room", "Kitchen", "Bedroom", "Lighting", "Dining", "Bathroom", "Garden", "Office"]  # fmt: skip
DIM = 512
CLUSTERS = 256


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
    # Stamped an hour back: a real catalogue's rows predate its index build by more than
    # search.live_rows.CHANGE_MARGIN, while one written and indexed within a minute would count
    # every product as changed since the build and measure the correction path, not search.
    now = (datetime.now(UTC) - timedelta(hours=1)).isoformat(sep=" ")
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
        info = json.loads(done.read_text())
        if seconds := ensure_keyword_index(env):
            info["keyword_index_s"] = seconds
            done.write_text(json.dumps(info))
        return info
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
    keyword_s = ensure_keyword_index(env)
    info = {"products": n, "catalogue_s": round(t1 - t0, 1), "index_s": round(time.monotonic() - t1, 1)}  # fmt: skip
    info["keyword_index_s"] = keyword_s
    manifest = json.loads((data / "index" / "current" / "manifest.json").read_text())
    info["index"] = {k: manifest.get(k) for k in ("index_type", "params", "recall_at_10")}
    done.write_text(json.dumps(info))
    return info


# The published version's keyword index (search.keyword_index), written as build_index writes
# it and listed in its manifest: a catalogue published before the index existed gets one.
_KEYWORD_CODE = """
import sys, time
from search.index import published_dir
from search.keyword_index import KeywordIndex, write_keyword_index
from search.manifest import read_manifest, write_manifest
version = published_dir()
if version is not None and KeywordIndex.load(version) is None:
    started = time.monotonic()
    write_keyword_index(version)
    write_manifest(version, read_manifest(version))
    print(round(time.monotonic() - started, 1))
"""


def ensure_keyword_index(env: dict[str, str]) -> float | None:
    """Write the published version's keyword index if it has none; its seconds, else None."""
    run = [sys.executable, "-c", f"import django; django.setup(); exec({_KEYWORD_CODE!r})"]
    out = subprocess.run(run, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return float(out.stdout) if out.stdout.strip() else None


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
