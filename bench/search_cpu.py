"""Server CPU per search against the bare int8 text forward pass, measured in the same run.

One process, one thread (like one gunicorn worker thread with one torch thread), no HTTP client
competing for the cores: each request goes through Django's full stack (middleware, view,
service, template) with `django.test.Client`, and its cost is the process's CPU time
(`time.process_time`), not wall time, so other work on a shared machine inflates it far less.

Per round, interleaved so all see the same machine: the bare text forward pass of the int8 (or
fp32) encoder on pre-tokenised input (`get_text_features`: the physical floor of a unique text
search), then one unique search, then a repeated one (the same query as the round before: its
candidate list is cached), the same from the page cache, then a filtered one, all with the
columnar snapshot as configured (on by default), then a unique and a filtered search with it the
other way. Reported: medians and means of CPU ms, the
ratio unique / bare (the issue-13 goal: <= 1.5), the server's own split (Server-Timing), a
CPU profile of the unique searches (the selector and snapshot calls search.signals, search.ranking
and search.pages make), and the snapshot modules' cost beside the
database calls they would replace (`search.snapshot`, `search.result_cache`), with an equality
check of their answers.

    .venv/bin/python -m bench.search_cpu --products 100000 --rounds 200 --json /tmp/cpu.json

The catalogue and index are bench/search.py's (bench/search_catalogue.py: built on first use,
reused after).
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

# Calls profiled (CPU ms per search), by module (or class) attribute: what search.signals,
# search.ranking and search.pages call at request time (they look these up on the module, so a
# wrapped attribute sees every call).
PROFILED = {
    "search.selectors": [
        "keyword_hits", "keyword_count", "exact_match_ids", "allowed_image_ids",
        "image_products", "hydrate_products", "variants_of", "offers_for", "candidate_rows",
        "facet_counts", "products_matching_any", "split_negatives",
    ],
    "search.snapshot": ["for_index"],
    "search.keyword_engine": [
        "hits", "count", "exact_title_lookup", "matching_any", "current",
    ],
    "search.live_rows": ["passing_product_ids", "changed_ids", "changed_products"],
    "search.keyword_delta": ["changed", "documents", "ranked"],
    "search.snapshot.Snapshot": ["allowed_image_ids", "fresh_owners", "facet_counts"],
    "search.attributes": ["attribute_match_ids"],
    "search.spelling": ["suggest"],
    "search.encoder": ["encode_text"],
    "search.index.SearchIndex": ["search"],
    "search.views": ["render", "render_results_page"],
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
    parser.add_argument(
        "--other",
        metavar="KEY=VALUE",
        help="the setting the '..., KEY=VALUE' phases run with (default: MEEPO_SEARCH_SNAPSHOT "
        "the other way); a Django setting, else an environment variable",
    )
    parser.add_argument(
        "--no-snapshot-checks",
        dest="snapshot_checks",
        action="store_false",
        help="skip the snapshot-vs-database answers check after the rounds",
    )
    parser.add_argument(
        "--equality",
        type=int,
        default=0,
        metavar="N",
        help="also compare N searches' pages (a mix of filters, sorts, page 2) under --other",
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
            owner = module_name.rpartition(".")[2]
            for name in names:
                setattr(module, name, self._wrap(f"{owner}.{name}", getattr(module, name)))

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
    from search import selectors
    from search.snapshot import Snapshot

    version_dir = Path(os.environ["MEEPO_DATA_DIR"]) / "index" / "current"
    write_s = ensure_snapshot()
    snap = Snapshot.load(version_dir)
    out: dict[str, list[float]] = defaultdict(list)
    equal = {"owners": 0, "facets": 0, "allowed": 0}
    brands = sorted({v for v, *_ in selectors.facet_counts(product_ids=[], filters=selectors.SearchFilters())["brand"]})  # fmt: skip
    rng = random.Random(3)
    for query in client_queries[:rounds]:
        for name, same in _compare_once(snap, query, rng.choice(brands), out).items():
            equal[name] += same
    return {
        "write_s": write_s,
        "cpu_ms": {k: summarise(v) for k, v in out.items()},
        "equal": equal,
        "checked": min(rounds, len(client_queries)),
    }


def _compare_once(snap, query: str, brand: str, out: dict[str, list[float]]) -> dict[str, bool]:
    """One query's owners, facets and allowed ids, from the database and from the snapshot:
    CPU ms of each into `out`, and whether their answers are equal."""
    from search import selectors, services
    from search.encoder import encode_text
    from search.index import get_index

    ranked = services._text_candidates(query, selectors.SearchFilters(), 120, {})
    pids = [c.product_id for c in ranked.candidates]
    _, ids = get_index().search(encode_text(query), 240)
    image_ids = [int(i) for i in ids]
    ms_db, owners_db = cpu_ms(selectors.image_products, image_ids)
    ms_sn, owners_sn = cpu_ms(snap.owners, image_ids)
    out["owners db"].append(ms_db)
    out["owners snapshot"].append(ms_sn)
    f = selectors.SearchFilters()
    ms_db, facets_db = cpu_ms(selectors.facet_counts, product_ids=pids, filters=f)
    ms_sn, facets_sn = cpu_ms(snap.facet_counts, product_ids=pids, filters=f)
    out["facets db"].append(ms_db)
    out["facets snapshot"].append(ms_sn)
    filt = selectors.SearchFilters(brands=(brand,))
    selectors._allowed_ids_cache.clear()
    ms_db, allowed_db = cpu_ms(selectors.allowed_image_ids, filters=filt)
    ms_sn, allowed_sn = cpu_ms(snap.allowed_image_ids, filt)
    out["allowed ids (cold) db"].append(ms_db)
    out["allowed ids snapshot"].append(ms_sn)
    return {
        "owners": owners_db == owners_sn,
        "facets": _same_facets(facets_db, facets_sn),
        "allowed": len(allowed_db) == len(allowed_sn) and bool((allowed_db == allowed_sn).all()),
    }


def _same_facets(a: dict, b: dict) -> bool:
    return {k: list(map(tuple, v)) for k, v in a.items()} == {
        k: list(map(tuple, v)) for k, v in b.items()
    }


def datapath_equality(queries: list[str], other: tuple[str, str]) -> dict:
    """The same searches with the configured settings and with `other`, each from cold caches
    (`services.clear_caches`): hit ids in order, totals, facets, price range, more pages.
    A mix: plain, brand, brand + in stock, a price band, sorted by price and by date, page 2."""
    from decimal import Decimal

    from bench.search import BRANDS
    from search import services
    from search.filters import SearchFilters

    rng = random.Random(13)
    kinds = [
        ({}, {}),
        ({"brands": True}, {}),
        ({"brands": True, "in_stock": True}, {}),
        ({"min_price": Decimal("50"), "max_price": Decimal("200")}, {}),
        ({"in_stock": True}, {"sort": "price_asc"}),
        ({"brands": True}, {"sort": "newest"}),
        ({}, {"offset": 24}),
    ]
    differ = []
    for i, query in enumerate(queries):
        filters, extra = kinds[i % len(kinds)]
        if filters.get("brands"):
            filters = {**filters, "brands": (rng.choice(BRANDS),)}
        answers = []
        for setting in (None, other):
            saved: dict = {}
            if setting is not None:
                _apply(setting, saved)
            try:
                services.clear_caches()
                page = services.search_products(query=query, filters=SearchFilters(**filters), **extra)  # fmt: skip
                answers.append(
                    (
                        [h.product.pk for h in page.hits],
                        [h.image.pk if h.image else None for h in page.hits],
                        page.total,
                        {k: list(map(tuple, v)) for k, v in page.facets.items()},
                        page.price_range,
                        page.has_more,
                    )
                )
            finally:
                _apply(None, saved)
        if answers[0] != answers[1]:
            differ.append({"query": query, "filters": str(filters), **extra})
    services.clear_caches()
    return {"checked": len(queries), "identical": len(queries) - len(differ), "differ": differ[:10]}


def ensure_snapshot() -> float | None:
    """The bench index is published by bench.planted_index (no database): write its snapshot
    as build_index would. Returns the seconds it took, None when it was there."""
    import numpy as np

    from search.snapshot import Snapshot
    from search.snapshot_write import write_row_columns, write_snapshot

    version_dir = (Path(os.environ["MEEPO_DATA_DIR"]) / "index" / "current").resolve()
    if Snapshot.load(version_dir) is not None:
        # A snapshot written before the candidate-row columns existed gets them.
        start = time.monotonic()
        return round(time.monotonic() - start, 2) if write_row_columns(version_dir) else None
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


def round_phases(queries: list[str], previous: str, rng, other: tuple[str, str]) -> dict:
    """One round's searches by phase name -> (query params, whether under the `other` setting).

    The plain phases run with the configured settings; those named after `other` (default:
    MEEPO_SEARCH_SNAPSHOT the other way) run unique, brand and brand + in stock searches with it,
    interleaved, so both paths see the same machine."""
    from bench.search import BRANDS

    q_unique, q_brand, q_stock, q_other, q_other_brand, q_other_stock = queries
    suffix = f", {other[0]}={other[1]}"
    return {
        "unique search": ({"q": q_unique}, False),
        "repeated search": ({"q": previous}, False),
        "repeated, page cache hit": ({"q": previous}, False),
        "filtered (brand)": ({"q": q_brand, "brand": rng.choice(BRANDS)}, False),
        STOCK: ({"q": q_stock, "brand": rng.choice(BRANDS), "in_stock": "on"}, False),
        "unique search" + suffix: ({"q": q_other}, True),
        "filtered (brand)" + suffix: ({"q": q_other_brand, "brand": rng.choice(BRANDS)}, True),
        STOCK + suffix: ({"q": q_other_stock, "brand": rng.choice(BRANDS), "in_stock": "on"}, True),
    }


STOCK = "filtered (brand + in stock)"
# Phases whose calls are profiled (CPU ms per profiled call and SQL queries per search).
PROFILED_PHASES = ("unique search", "filtered (brand)", STOCK)
QUERIES_PER_ROUND = 7


def other_setting(text: str | None) -> tuple[str, str]:
    """`--other KEY=VALUE`, default MEEPO_SEARCH_SNAPSHOT the other way from the settings."""
    from django.conf import settings

    if not text:
        return "MEEPO_SEARCH_SNAPSHOT", str(not settings.MEEPO_SEARCH_SNAPSHOT).lower()
    key, _, value = text.partition("=")
    return key, value


def _apply(setting: tuple[str, str] | None, saved: dict) -> None:
    """Set (or, with None, restore) one setting as the server would read it: the Django setting
    when settings has it (booleans parsed), else the environment (modules that read it there)."""
    from django.conf import settings

    if setting is None:
        for key, value in saved.items():
            if key.startswith("env:"):
                if value is None:
                    os.environ.pop(key[4:], None)
                else:
                    os.environ[key[4:]] = value
            else:
                setattr(settings, key, value)
        return
    key, value = setting
    if hasattr(settings, key):
        saved.setdefault(key, getattr(settings, key))
        current = getattr(settings, key)
        parsed = value.lower() in ("1", "true", "on", "yes") if isinstance(current, bool) else value
        setattr(
            settings, key, type(current)(parsed) if isinstance(current, int | float) else parsed
        )
    else:
        saved.setdefault(f"env:{key}", os.environ.get(key))
        os.environ[key] = value


def search_once(client, phase: str, params: dict, setting: tuple[str, str] | None):
    """CPU ms and response of one search, with the phase's setting and page-cache switches."""
    from django.conf import settings

    saved: dict = {}
    if setting is not None:
        _apply(setting, saved)
    PAGE_CACHE["on"] = "page cache" in phase
    settings.MEEPO_SEARCH_PAGE_CACHE_SECONDS = 60 if PAGE_CACHE["on"] else 0
    try:
        if PAGE_CACHE["on"]:
            client.get("/search?" + urlencode(params))  # a miss that stores the page
        ms, response = cpu_ms(client.get, "/search?" + urlencode(params))
    finally:
        PAGE_CACHE["on"] = False
        settings.MEEPO_SEARCH_PAGE_CACHE_SECONDS = 0
        _apply(None, saved)
    assert response.status_code == 200, response.status_code
    return ms, response


class QueryCounter:
    """SQL statements run while `on` (a connection execute wrapper)."""

    def __init__(self) -> None:
        self.on, self.count = False, 0

    def __call__(self, execute, sql, params, many, context):
        if self.on:
            self.count += 1
        return execute(sql, params, many, context)


def run_rounds(client, encoder, queries: list[str], rounds: int, other) -> tuple[dict, dict, dict]:
    """Interleaved rounds: CPU ms per phase, Server-Timing split per phase, and per profiled
    phase the CPU ms of each profiled call and the SQL statements per search."""
    from django.db import connection

    profiler = Profiler()
    profiler.install()
    counter = QueryCounter()
    rng = random.Random(7)
    cpu, profile = defaultdict(list), defaultdict(lambda: defaultdict(list))
    split = defaultdict(lambda: defaultdict(list))
    previous = queries[-1]
    n = QUERIES_PER_ROUND
    with connection.execute_wrapper(counter):
        for i in range(rounds):
            q_bare, *rest = queries[n * i : n * i + n]
            cpu["bare text forward"].append(cpu_ms(bare_forward(encoder, [q_bare]))[0])
            for phase, (params, use_other) in round_phases(rest, previous, rng, other).items():
                base = phase.split(", ")[0] if use_other else phase
                profiled = base in PROFILED_PHASES
                profiler.current = {} if profiled else None
                counter.on, counter.count = profiled, 0
                ms, response = search_once(client, phase, params, other if use_other else None)
                cpu[phase].append(ms)
                for stage, dur in timing(response.get("Server-Timing", "")).items():
                    split[phase][stage].append(dur)
                if profiled:
                    for name in PROFILED_ALL:
                        profile[phase][name].append(profiler.current.get(name, 0.0))
                    profile[phase]["SQL statements"].append(counter.count)
                profiler.current, counter.on = None, False
            previous = rest[0]
    return cpu, split, profile


def tables(cpu: dict, split: dict, profile: dict) -> tuple[list[dict], list[dict]]:
    """The phase rows (CPU ms, x bare, Server-Timing stages) and the profile rows: mean CPU ms
    per profiled call (nested calls are counted in each: keyword_hits holds keyword_engine.hits)
    and SQL statements per search, a column per profiled phase."""
    bare = statistics.median(cpu["bare text forward"])
    rows = []
    for phase, samples in cpu.items():
        s = summarise(samples)
        stages = {k: round(statistics.fmean(v), 2) for k, v in split[phase].items()}
        rows.append({"what": phase, **s, "x bare (median)": round(s["median"] / bare, 2), **stages})  # fmt: skip
    phases = list(profile)
    means = {ph: {k: statistics.fmean(v) for k, v in profile[ph].items()} for ph in phases}
    first = phases[0] if phases else ""
    names = sorted({k for m in means.values() for k, v in m.items() if v > 0 and k != "SQL statements"}, key=lambda k: -means[first].get(k, 0))  # fmt: skip
    prof_rows = [{"call (mean CPU ms)": k, **{ph: round(means[ph].get(k, 0), 2) for ph in phases}} for k in names]  # fmt: skip
    prof_rows.append({"call (mean CPU ms)": "rest (Django, services, middleware)", **{ph: round(statistics.fmean(cpu[ph]) - sum(means[ph].get(k, 0) for k in names), 2) for ph in phases}})  # fmt: skip
    prof_rows.append({"call (mean CPU ms)": "SQL statements per search", **{ph: round(means[ph].get("SQL statements", 0), 1) for ph in phases}})  # fmt: skip
    return rows, prof_rows


def main() -> None:
    args = parse_args()
    info = setup(args.products, quantize=not args.fp32, exact_max=args.exact_max)
    from django.test import Client

    from bench.search import unique_queries
    from search.encoder import get_encoder
    from search.index import get_index

    snapshot_s = ensure_snapshot()
    wire_page_cache()
    encoder = get_encoder()
    get_index()
    client = Client(HTTP_HOST="127.0.0.1")
    queries = unique_queries(QUERIES_PER_ROUND * args.rounds + 40, seed=11)
    for q in queries[-40:]:  # warm: model, index, database pages
        client.get("/search?" + urlencode({"q": q}))
    other = other_setting(args.other)
    cpu, split, profile = run_rounds(client, encoder, queries, args.rounds, other)
    rows, prof_rows = tables(cpu, split, profile)
    checked = min(100, args.rounds) if args.snapshot_checks else 0
    snap = snapshot_checks(queries[: args.rounds], checked) if checked else {"checked": 0}
    print(f"search CPU bench: {args.products} products, encoder {encoder.mode}, catalogue {info}")
    print_table(rows)
    print_table(prof_rows)
    if checked:
        print_table([{"component": k, **v} for k, v in snap["cpu_ms"].items()])
        print("snapshot answers equal to the database's:", snap["equal"], "of", snap["checked"])
    same = datapath_equality(queries[-args.equality :], other) if args.equality else None
    if same:
        print(f"pages equal to {'='.join(other)}'s:", same["identical"], "of", same["checked"], same["differ"])  # fmt: skip
    ratio = round(statistics.median(cpu["unique search"]) / statistics.median(cpu["bare text forward"]), 2)  # fmt: skip
    emit_json({"bench": "search_cpu", "products": args.products, "encoder": encoder.mode, "catalogue": info, "other": "=".join(other), "rows": rows, "profile": prof_rows, "snapshot": snap, "snapshot_write_s": snapshot_s, "equality": same, "ratio_unique_to_bare": ratio, "machine": machine()}, args.json)  # fmt: skip


PROFILED_ALL = [
    f"{module.rpartition('.')[2]}.{name}" for module, names in PROFILED.items() for name in names
]

if __name__ == "__main__":
    main()
