"""Server CPU per search against the bare int8 text forward pass, measured in the same run.

One process, one thread (like one gunicorn worker thread with one torch thread), no HTTP client
competing for the cores: each request goes through Django's full stack (middleware, view,
service, template) with `django.test.Client`, and its cost is the process's CPU time
(`time.process_time`), not wall time, so other work on a shared machine inflates it far less.

Per round, interleaved so all see the same machine: the bare text forward pass of the int8 (or
fp32) encoder on pre-tokenised input (`get_text_features`: the physical floor of a unique text
search), then one unique search, then a repeated one (the same query as the round before: its
candidate list is cached), then a filtered one. Reported: medians and means of CPU ms, the
ratio unique / bare (the issue-13 goal: <= 1.5), the server's own split (Server-Timing), a
per-selector CPU profile of the unique searches, and the snapshot modules' cost beside the
database calls they would replace (`search.snapshot`, `search.result_cache`), with an equality
check of their answers.

    .venv/bin/python -m bench.search_cpu --products 100000 --rounds 200 --json /tmp/cpu.json

The catalogue and index are bench/search.py's (built on first use, reused after).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import emit_json, machine, print_table  # noqa: E402

# Selector calls profiled (CPU ms per search), by module attribute.
PROFILED = {
    "search.selectors": [
        "keyword_hits", "keyword_count", "exact_match_ids", "allowed_image_ids",
        "image_products", "hydrate_products", "variants_of", "offers_for", "product_gtins",
        "facet_counts", "products_matching_any", "sort_keys",
    ],
    "search.attributes": ["attribute_match_ids"],
    "search.spelling": ["suggest"],
    "search.encoder": ["encode_text"],
    "search.index.SearchIndex": ["search"],
    "search.views": ["render"],
}  # fmt: skip


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--fp32", action="store_true", help="fp32 encoder (default int8)")
    parser.add_argument(
        "--exact-max",
        type=int,
        help="MEEPO_INDEX_EXACT_MAX for the catalogue's index (0: IVF at any size); own data dir",
    )
    parser.add_argument("--json", help="also write the JSON result here")
    return parser.parse_args()


def setup(products: int, quantize: bool, exact_max: int | None = None) -> dict:
    from bench import search as bs

    bs.OUT.mkdir(parents=True, exist_ok=True)
    suffix = "" if exact_max is None else f"-exact{exact_max}"
    data = bs.OUT / f"search-{products}{suffix}"
    env = bs.app_env(data, bs._model_dir())
    if exact_max is not None:
        env["MEEPO_INDEX_EXACT_MAX"] = str(exact_max)
    env["MEEPO_CLIP_QUANTIZE"] = "true" if quantize else "false"
    env["MEEPO_TORCH_THREADS"] = "1"
    env["MEEPO_DEBUG"] = "0"
    env["MEEPO_SEARCH_PAGE_CACHE_SECONDS"] = "0"  # 60 only in the page-cache phase
    info = bs.prepare(products, data, env)
    os.environ.update(env)
    import django

    django.setup()
    return info


def cpu_ms(fn, *args, **kwargs):
    start = time.process_time()
    out = fn(*args, **kwargs)
    return (time.process_time() - start) * 1000, out


class Profiler:
    """CPU ms per selector call, attributed to the request running it."""

    def __init__(self) -> None:
        self.current: dict[str, float] | None = None

    def install(self) -> None:
        import importlib

        for module_name, names in PROFILED.items():
            try:
                module = importlib.import_module(module_name)
            except ImportError:  # a class: module.Class
                parent, _, cls = module_name.rpartition(".")
                module = getattr(importlib.import_module(parent), cls)
            for name in names:
                setattr(module, name, self._wrap(f"{name}", getattr(module, name)))

    def _wrap(self, label, fn):
        def wrapped(*args, **kwargs):
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                if self.current is not None:
                    ms = (time.process_time() - start) * 1000
                    self.current[label] = self.current.get(label, 0.0) + ms

        return wrapped


def bare_forward(encoder, texts: list[str]):
    """Tokenise outside the clock, then time only `get_text_features` (one text, batch 1)."""
    import torch

    from search.encoder import TEXT_INPUTS, max_text_tokens

    tokens = encoder.processor.tokenizer(
        texts, padding=True, truncation=True,
        max_length=max_text_tokens(encoder.model, encoder.processor), return_tensors="pt",
    )  # fmt: skip
    inputs = {k: tokens[k] for k in TEXT_INPUTS if k in tokens}

    def run():
        with torch.inference_mode():
            encoder.model.get_text_features(**inputs)

    return run


def summarise(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "n": len(samples),
        "median": round(statistics.median(samples), 2),
        "mean": round(statistics.fmean(samples), 2),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
    }


def timing(header: str) -> dict[str, float]:
    from bench.search import parse_timing

    return parse_timing(header)


def snapshot_checks(client_queries: list[str], rounds: int) -> dict:
    """Snapshot answers vs the selectors they stand for, over real candidate lists."""
    from search import selectors, services
    from search.encoder import encode_text
    from search.index import get_index
    from search.snapshot import Snapshot, write_snapshot

    index = get_index()
    version_dir = Path(os.environ["MEEPO_DATA_DIR"]) / "index" / "current"
    snap = Snapshot.load(version_dir)
    write_s = None
    if snap is None:
        import numpy as np

        ids = np.load(version_dir / "ids.npy")
        start = time.monotonic()
        write_snapshot(version_dir, ids)
        write_s = round(time.monotonic() - start, 2)
        snap = Snapshot.load(version_dir)
    out: dict[str, list[float]] = defaultdict(list)
    equal = {"owners": 0, "facets": 0, "allowed": 0}
    brands = sorted({v for v, *_ in selectors.facet_counts(product_ids=[], filters=selectors.SearchFilters())["brand"]})  # fmt: skip
    rng = random.Random(3)
    for query in client_queries[:rounds]:
        ranked = services._text_candidates(query, selectors.SearchFilters(), 120, {})
        pids = [c.product_id for c in ranked.candidates]
        k = 240
        _, ids = index.search(encode_text(query), k)
        image_ids = [int(i) for i in ids]
        ms_db, owners_db = cpu_ms(selectors.image_products, image_ids)
        ms_sn, owners_sn = cpu_ms(snap.owners, image_ids)
        out["owners db"].append(ms_db)
        out["owners snapshot"].append(ms_sn)
        equal["owners"] += owners_db == owners_sn
        f = selectors.SearchFilters()
        ms_db, facets_db = cpu_ms(selectors.facet_counts, product_ids=pids, filters=f)
        ms_sn, facets_sn = cpu_ms(snap.facet_counts, product_ids=pids, filters=f)
        out["facets db"].append(ms_db)
        out["facets snapshot"].append(ms_sn)
        equal["facets"] += _same_facets(facets_db, facets_sn)
        filt = selectors.SearchFilters(brands=(rng.choice(brands),))
        selectors._allowed_ids_cache.clear()
        ms_db, allowed_db = cpu_ms(selectors.allowed_image_ids, filters=filt)
        ms_sn, allowed_sn = cpu_ms(snap.allowed_image_ids, filt)
        out["allowed ids (cold) db"].append(ms_db)
        out["allowed ids snapshot"].append(ms_sn)
        equal["allowed"] += bool((allowed_db == allowed_sn).all()) if len(allowed_db) == len(allowed_sn) else False  # fmt: skip
    return {
        "write_s": write_s,
        "cpu_ms": {k: summarise(v) for k, v in out.items()},
        "equal": equal,
        "checked": min(rounds, len(client_queries)),
    }


def _same_facets(a: dict, b: dict) -> bool:
    return {k: list(map(tuple, v)) for k, v in a.items()} == {
        k: list(map(tuple, v)) for k, v in b.items()
    }


def ensure_snapshot() -> float | None:
    """The bench index is published by bench.planted_index (no database): write its snapshot
    as build_index would. Returns the seconds it took, None when it was there."""
    import numpy as np

    from search.snapshot import Snapshot, write_snapshot

    version_dir = (Path(os.environ["MEEPO_DATA_DIR"]) / "index" / "current").resolve()
    if Snapshot.load(version_dir) is not None:
        return None
    start = time.monotonic()
    write_snapshot(version_dir, np.load(version_dir / "ids.npy"))
    return round(time.monotonic() - start, 2)


PAGE_CACHE = {"on": False}


def wire_page_cache() -> None:
    """search.views.results behind search.result_cache, as the view would wire it (bench only,
    switched by PAGE_CACHE["on"]); must run before the URLconf is first imported."""
    import re

    from search import result_cache, services, views

    if hasattr(views, "_render_results"):  # docs/patches/issue13-page-cache-wiring applied
        return
    real = views.results

    def results(request):
        if not PAGE_CACHE["on"]:
            return real(request)
        kind = "htmx" if request.headers.get("HX-Request") else "html"
        key = result_cache.request_key(request, kind=kind, version=services._index_version())
        hit = result_cache.cached_response(key)
        if hit is not None:
            return hit
        response = real(request)
        ids = [int(m) for m in re.findall(rb'data-product-id="(\d+)"', response.content)]
        result_cache.keep_response(key, response, ids)
        return response

    views.results = results


def main() -> None:
    args = parse_args()
    info = setup(args.products, quantize=not args.fp32, exact_max=args.exact_max)
    from django.conf import settings
    from django.test import Client

    from bench.search import BRANDS, unique_queries
    from search import services
    from search.encoder import get_encoder
    from search.index import get_index

    snapshot_s = ensure_snapshot()
    wire_page_cache()
    snapshot_wired = hasattr(services, "_facet_counts")  # docs/patches/issue13-snapshot-wiring
    encoder = get_encoder()
    get_index()
    client = Client(HTTP_HOST="127.0.0.1")
    queries = unique_queries(5 * args.rounds + 40, seed=11)
    for q in queries[-40:]:  # warm: model, index, database pages
        client.get("/search?" + urlencode({"q": q}))
    profiler = Profiler()
    profiler.install()
    rng = random.Random(7)
    cpu = defaultdict(list)
    split = defaultdict(lambda: defaultdict(list))
    profile = defaultdict(list)
    previous = queries[-1]
    for i in range(args.rounds):
        q_unique, q_bare, q_filter, q_snap, q_snap_filter = queries[5 * i : 5 * i + 5]
        ms, _ = cpu_ms(bare_forward(encoder, [q_bare]))
        cpu["bare text forward"].append(ms)
        phases = {
            "unique search": {"q": q_unique},
            "repeated search": {"q": previous},
            "repeated, page cache hit": {"q": previous},
            "filtered (brand)": {"q": q_filter, "brand": rng.choice(BRANDS)},
        }
        if snapshot_wired:
            phases["unique search, MEEPO_SEARCH_SNAPSHOT"] = {"q": q_snap}
            brand = rng.choice(BRANDS)
            phases["filtered (brand), MEEPO_SEARCH_SNAPSHOT"] = {"q": q_snap_filter, "brand": brand}
        for phase, params in phases.items():
            profiler.current = {} if phase == "unique search" else None
            settings.MEEPO_SEARCH_SNAPSHOT = "SNAPSHOT" in phase
            PAGE_CACHE["on"] = "page cache" in phase
            settings.MEEPO_SEARCH_PAGE_CACHE_SECONDS = 60 if PAGE_CACHE["on"] else 0
            if PAGE_CACHE["on"]:
                client.get("/search?" + urlencode(params))  # a miss that stores the page
            ms, response = cpu_ms(client.get, "/search?" + urlencode(params))
            PAGE_CACHE["on"] = settings.MEEPO_SEARCH_SNAPSHOT = False
            settings.MEEPO_SEARCH_PAGE_CACHE_SECONDS = 0
            assert response.status_code == 200, response.status_code
            cpu[phase].append(ms)
            for stage, dur in timing(response.get("Server-Timing", "")).items():
                split[phase][stage].append(dur)
            if profiler.current is not None:
                for name in PROFILED_ALL:
                    profile[name].append(profiler.current.get(name, 0.0))
        profiler.current = None
        previous = q_unique
    bare = statistics.median(cpu["bare text forward"])
    rows = []
    for phase, samples in cpu.items():
        s = summarise(samples)
        stages = {k: round(statistics.fmean(v), 2) for k, v in split[phase].items()}
        rows.append({"what": phase, **s, "x bare (median)": round(s["median"] / bare, 2), **stages})  # fmt: skip
    prof_rows = [
        {"selector (unique search)": name, "mean CPU ms": round(statistics.fmean(v), 2)}
        for name, v in sorted(profile.items(), key=lambda kv: -statistics.fmean(kv[1]))
        if statistics.fmean(v) > 0
    ]
    accounted = sum(r["mean CPU ms"] for r in prof_rows)
    prof_rows.append({"selector (unique search)": "rest (Django, services, middleware)", "mean CPU ms": round(statistics.fmean(cpu["unique search"]) - accounted, 2)})  # fmt: skip
    snap = snapshot_checks(queries[: args.rounds], min(100, args.rounds))
    print(f"search CPU bench: {args.products} products, encoder {encoder.mode}, catalogue {info}")
    print_table(rows)
    print_table(prof_rows)
    print_table([{"component": k, **v} for k, v in snap["cpu_ms"].items()])
    print("snapshot answers equal to the database's:", snap["equal"], "of", snap["checked"])
    emit_json({"bench": "search_cpu", "products": args.products, "encoder": encoder.mode, "catalogue": info, "rows": rows, "profile": prof_rows, "snapshot": snap, "snapshot_write_s": snapshot_s, "snapshot_wired": snapshot_wired, "ratio_unique_to_bare": round(statistics.median(cpu["unique search"]) / bare, 2), "machine": machine()}, args.json)  # fmt: skip


PROFILED_ALL = [name for names in PROFILED.values() for name in names]

if __name__ == "__main__":
    main()
