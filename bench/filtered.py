"""CPU cost of the filtered visual path (`search.signals.visual_candidates`) against the unfiltered
one, per kind of filter, on a bench/search catalogue (issue 13: filtered within 1.3x).

One process, one thread, CPU time (`time.process_time`) per call. Each round takes a new query
vector (a catalogue vector plus noise) and a new filter value drawn at random (a brand, a store,
a category, a price band), so nothing is cached from the round before, unless the phase says
"repeat" (the same filter as the round before with a new vector: a shopper refining a query).
Reported per phase: median and mean CPU ms, the ratio to the unfiltered median, the wall-clock
split the search records (db / ann), and a digest of the ids found, so two runs (another code
version: `--compare`) can be checked for the same results in the same order.

Read-only on the catalogue: it only searches (the database is asked SELECTs only).

    .venv/bin/python -m bench.filtered --products 1000000 --rounds 30 --json /tmp/filtered.json

The catalogue and index are bench/search.py's (bench/search_catalogue.py), built beforehand.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import secrets
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import emit_json, machine, print_table  # noqa: E402

DEPTH = 120  # search.services.CANDIDATE_DEPTH: a text search's visual depth
# Phases whose filter the snapshot cannot serve as rows and the database answers with a query
# over the whole catalogue (seconds at 1 M): a few rounds are enough.
DATABASE_ROUNDS = 3


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--data", help="catalogue directory (default bench/out/search-N)")
    parser.add_argument("--compare", help="a JSON result of another run: same ids per phase?")
    parser.add_argument("--json", help="also write the JSON result here")
    return parser.parse_args()


def setup(data: Path) -> None:
    manifest = json.loads((data / "index" / "current" / "manifest.json").read_text())
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "meepo.settings",
            "MEEPO_DATA_DIR": str(data),
            "MEEPO_SECRET_KEY": secrets.token_urlsafe(50),
            "MEEPO_ALLOWED_HOSTS": "localhost",
            "MEEPO_LOG_LEVEL": "WARNING",
            "MEEPO_CLIP_MODEL": manifest["model"],
            "MEEPO_FAISS_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
        }
    )
    import django

    django.setup()
    warn_unmigrated()


def warn_unmigrated() -> None:
    """Price/stock filters look up products changed since the build on the updated_at index
    (catalog migration 0011): a catalogue built before it scans every product instead. This
    bench never migrates (read-only); bench.search / bench.search_cpu do when they reuse one."""
    from django.db import connection

    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "catalog_product")
    if not any(c["index"] and c["columns"] == ["updated_at"] for c in found.values()):
        print("warning: catalog_product has no updated_at index; migrate the catalogue first", file=sys.stderr)  # fmt: skip


def phases(rng: random.Random) -> dict:
    """Phase name -> (a function of the round giving its filters, rounds cap or None)."""
    from bench.search_catalogue import BRANDS, CATEGORIES
    from search.filters import SearchFilters

    def band():
        low = rng.randrange(3, 400)
        return {"min_price": Decimal(low), "max_price": Decimal(low + 30)}

    last: dict[str, SearchFilters] = {}

    def repeat(name, make):
        def build():
            last.setdefault(name, make())
            return last[name]

        return build

    brand = lambda: SearchFilters(brands=(rng.choice(BRANDS),))  # noqa: E731
    return {
        "unfiltered": (lambda: SearchFilters(), None),
        "brand": (brand, None),
        "brand, repeat": (repeat("brand", brand), None),
        "two brands": (lambda: SearchFilters(brands=tuple(rng.sample(BRANDS, 2))), None),
        "store": (lambda: SearchFilters(stores=(f"store-{rng.randrange(20)}",)), None),
        "category": (lambda: SearchFilters(categories=(rng.choice(CATEGORIES),)), None),
        "brand + in stock": (
            lambda: SearchFilters(brands=(rng.choice(BRANDS),), in_stock=True),
            None,
        ),
        "brand + price band": (
            lambda: SearchFilters(brands=(rng.choice(BRANDS),), **band()),
            None,
        ),
        "category + in stock": (
            lambda: SearchFilters(categories=(rng.choice(CATEGORIES),), in_stock=True),
            DATABASE_ROUNDS,
        ),
        "price band": (
            lambda: SearchFilters(**band()),
            DATABASE_ROUNDS,
        ),
    }


def query_vectors(count: int):
    import numpy as np

    from search.index import get_index

    index = get_index()
    rng = np.random.default_rng(5)
    base = np.asarray(index.vectors[rng.integers(0, index.ntotal, count)], dtype=np.float32)
    q = base + rng.normal(0, 0.03, base.shape).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def run(rounds: int) -> tuple[list[dict], dict[str, str]]:
    from search.signals import visual_candidates

    rng = random.Random(11)
    table = phases(rng)
    vectors = query_vectors(rounds * len(table) + 1)
    visual_candidates(vectors[-1], filters=table["unfiltered"][0](), depth=DEPTH, timings={})
    cpu, split, found = {}, {}, {}
    at = 0
    for i in range(rounds):
        for name, (make, cap) in table.items():
            if cap is not None and i >= cap:
                continue
            filters, timings = make(), {}
            start = time.process_time()
            hits = visual_candidates(vectors[at], filters=filters, depth=DEPTH, timings=timings)
            cpu.setdefault(name, []).append((time.process_time() - start) * 1000)
            for stage, ms in timings.items():
                split.setdefault(name, {}).setdefault(stage, []).append(ms)
            found.setdefault(name, []).append([c.product_id for c in hits])
            at += 1
    base = statistics.median(cpu["unfiltered"])
    rows = [
        {
            "phase": name,
            "n": len(ms),
            "cpu_ms_p50": statistics.median(ms),
            "cpu_ms_mean": statistics.mean(ms),
            "x_unfiltered": statistics.median(ms) / base,
            "wall_db_ms_p50": statistics.median(split[name].get("db", [0.0])),
            "wall_ann_ms_p50": statistics.median(split[name].get("ann", [0.0])),
            "hits_p50": statistics.median(len(f) for f in found[name]),
        }
        for name, ms in cpu.items()
    ]
    digests = {
        name: hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]
        for name, ids in found.items()
    }
    return rows, digests


def main():
    args = parse_args()
    data = Path(args.data or ROOT / "bench" / "out" / f"search-{args.products}")
    setup(data)
    rows, digests = run(args.rounds)
    for row in rows:
        row["ids_digest"] = digests[row["phase"]]
    if args.compare:
        other = {r["phase"]: r["ids_digest"] for r in json.loads(Path(args.compare).read_text())["rows"]}  # fmt: skip
        for row in rows:
            row["same_ids_as_compared"] = other.get(row["phase"]) == row["ids_digest"]
    print_table(rows)
    emit_json({"bench": "filtered", "data": data, "rows": rows, "machine": machine()}, args.json)


if __name__ == "__main__":
    main()
