"""Index benchmark: Meepo's production index path vs exact flat search, on synthetic CLIP-like data.

    python -m bench.index --sizes 10000 100000 1000000 [--json out.json]
    python -m bench.index --build-db DATA_DIR [--add 500] [--json out.json]
    python -m bench.index --kinds --sizes 30000 100000 300000 [--data clustered|cliplike]

The third form compares index kinds directly in faiss (no publishing): exact Flat, SQfp16 flat
scan, IVF-Flat, IVF-SQ8 with and without an exact re-rank (IndexRefineFlat) and HNSW32, each at
several nprobe / efSearch / k_factor values: recall@10 against exact (image-like and text-like
queries), CPU ms per single query (process_time, one thread), the largest score error of a
returned id against its exact inner product, build seconds and index bytes. `--data clustered`
plants the bench catalogues' vectors (bench.search_catalogue.planted_vectors), `cliplike` the
power-law ones below; text-like queries are image-like ones shifted by a fixed modality gap.

The second form measures `manage.py build_index` itself on a catalogue database (e.g. a copy of
bench/out/load-1000000/data made by bench/load.py; it writes index versions there): a full
build (--force), then, after adding --add products, an incremental one, each in a child process
whose RSS (anonymous and file-backed) is sampled every 0.25 s.

Data (512-d unit vectors, not uniform noise): z ~ N(0, diag(i^-1.3)) under a random rotation,
normalised, plus a common mean direction (mean cosine ≈ 0.35 between unrelated items); 30 % of
items are near-duplicate variants of another item (product variants). Two query sets, neither
in the index: image-like (fresh items from the same process) and text-like (the same, shifted by
one fixed offset vector: the CLIP modality gap). Ground truth is exact inner-product search.

For each size it builds the index exactly as `build_index` does (type by size and memory budget,
nprobe tuned to MEEPO_INDEX_RECALL), publishes it, loads it memory-mapped in a fresh process to
measure resident memory, and measures single-query latency through `SearchIndex.search` with one
thread, filtered queries at 50/10/1/0.1 % selectivity, and exact flat search beside it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import (
    emit_json,
    machine,
    memory_kb,
    percentiles,
    print_table,
    setup_django,
    stopwatch,
    time_each,
)

DIM = 512
K = 10
SELECTIVITIES = (0.5, 0.1, 0.01, 0.001)


class ClipLike:
    """Generator of CLIP-shaped vectors (fixed rotation, mean and modality-gap offset)."""

    def __init__(self, dim: int = DIM, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.dim = dim
        self.scale = (np.arange(1, dim + 1) ** -0.65).astype(np.float32)  # std: variance i^-1.3
        self.rotation = np.linalg.qr(rng.normal(size=(dim, dim)))[0].astype(np.float32)
        self.mean = _unit(rng.normal(size=dim)).astype(np.float32) * 0.7
        self.gap = _unit(rng.normal(size=dim)).astype(np.float32) * 0.6

    def items(self, n: int, rng: np.random.Generator, *, dup_fraction: float = 0.3) -> np.ndarray:
        out = np.empty((n, self.dim), dtype=np.float32)
        for start in range(0, n, 100_000):
            m = min(100_000, n - start)
            z = rng.standard_normal((m, self.dim), dtype=np.float32) * self.scale
            x = _unit(z @ self.rotation) + self.mean
            out[start : start + m] = _unit(x)
        # Variants: copies of a random earlier item with a small perturbation.
        dups = rng.choice(n, size=int(n * dup_fraction), replace=False)
        base = rng.integers(0, n, size=len(dups))
        noise = rng.standard_normal((len(dups), self.dim), dtype=np.float32) * self.scale
        out[dups] = _unit(out[base] + 0.35 * _unit(noise @ self.rotation))
        return out

    def text_queries(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return _unit(self.items(n, rng, dup_fraction=0) + self.gap)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def exact_topk(vectors, queries, k=K, mask=None, chunk=100_000):
    """Exact top-k positions by chunked matmul (optionally only where mask is True)."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), k), -1, dtype=np.int64)
    for start in range(0, len(vectors), chunk):
        scores = queries @ vectors[start : start + chunk].T
        if mask is not None:
            scores[:, ~mask[start : start + chunk]] = -np.inf
        cand = np.broadcast_to(np.arange(start, start + scores.shape[1]), scores.shape)
        all_s, all_i = np.hstack([best_s, scores]), np.hstack([best_i, cand])
        top = np.argpartition(-all_s, k - 1, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(all_s, top, 1), np.take_along_axis(all_i, top, 1)
    order = np.argsort(-best_s, axis=1)
    return np.take_along_axis(best_i, order, 1), np.take_along_axis(best_s, order, 1)


def recall(found: list[np.ndarray], truth: np.ndarray) -> float:
    hits = [
        len(set(f.tolist()) & set(t[t >= 0].tolist())) / max(1, (t >= 0).sum())
        for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits))


def data_stats(vectors, queries, rng) -> dict:
    a = vectors[rng.integers(0, len(vectors), 2000)]
    b = vectors[rng.integers(0, len(vectors), 2000)]
    _, nn_s = exact_topk(vectors, queries[:200], k=1)
    return {
        "mean_cos_random_pair": float(np.mean(np.sum(a * b, axis=1))),
        "mean_cos_query_nn": float(nn_s.mean()),
    }


def bench_exact_flat(vectors, queries) -> dict:
    import faiss

    faiss.omp_set_num_threads(1)
    with stopwatch() as t:
        flat = faiss.IndexFlatIP(DIM)
        flat.add(vectors)
    n = 30 if len(vectors) >= 500_000 else 100
    ms = time_each(lambda q: flat.search(q.reshape(1, -1), K), queries[:n])
    flat.reset()  # free the copy before the next build
    return {"build_s": t(), **percentiles(ms)}


def resident_memory(version_dir) -> dict:
    """Load the published version in a fresh process (as a web worker does) and run queries."""
    code = (
        "import sys, numpy as np\n"
        "from bench.common import setup_django, memory_kb\n"
        "setup_django(sys.argv[2])\n"
        "from search.index import SearchIndex\n"
        "before = memory_kb()\n"
        "idx = SearchIndex.load(__import__('pathlib').Path(sys.argv[1]))\n"
        "rng = np.random.default_rng(0)\n"
        "for _ in range(300):\n"
        "    q = rng.normal(size=idx.dim).astype('float32'); idx.search(q / np.linalg.norm(q), 10)\n"
        "after = memory_kb()\n"
        "print(after['RssAnon'] - before['RssAnon'], after['RssFile'] - before['RssFile'])\n"
    )
    data_dir = version_dir.parent.parent
    out = subprocess.run(
        [sys.executable, "-c", code, str(version_dir), str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    files = sum(p.stat().st_size for p in version_dir.iterdir())
    index_file = (version_dir / "index.faiss").stat().st_size
    return {
        "private_mb": int(out[0]) / 1024,
        "shared_file_mb": int(out[1]) / 1024,
        "index_file_mb": index_file / 2**20,
        "version_dir_mb": files / 2**20,
    }


def bench_size(n: int, gen: ClipLike, args) -> dict:
    """Build (or reuse) an index of `n` planted vectors and measure it.

    Long: a benchmark read top to bottom (build, load, plain and filtered queries, row).
    """
    from django.conf import settings

    from bench.planted_index import publish_arrays
    from search.index import SearchIndex

    rng = np.random.default_rng(n)
    with stopwatch() as t_gen:
        vectors = gen.items(n, rng)
        image_q = gen.items(args.queries, rng, dup_fraction=0)
        text_q = gen.text_queries(args.queries, rng)
    ids = np.arange(1, n + 1, dtype=np.int64) * 3  # ProductImage pks: sparse, not positions
    result: dict = {"n": n, "generate_s": t_gen(), **data_stats(vectors, image_q, rng)}
    with stopwatch() as t_truth:
        truth_img, _ = exact_topk(vectors, image_q)
        truth_txt, _ = exact_topk(vectors, text_q)
    result["ground_truth_s"] = t_truth()
    result["exact_flat"] = bench_exact_flat(vectors, image_q)

    if args.reuse_index:
        # Search-only re-run on an index this benchmark built before (same data and seed).
        version = Path(args.reuse_index).resolve()
        manifest = json.loads((version / "manifest.json").read_text())
        assert manifest["count"] == n, "the reused index was built for another size"
        result["build"] = {
            "reused": str(version),
            "index_type": manifest["index_type"],
            "factory": manifest["factory"],
            "params": manifest["params"],
            "tuned_recall": manifest["recall_at_10"],
        }
        built_type = manifest["index_type"]
    else:
        rss0 = memory_kb()["VmRSS"]
        version, built, build_s = publish_arrays(
            ids,
            vectors,
            model="bench",
            exact_max=args.exact_max,
            memory_mb=settings.MEEPO_INDEX_MEMORY_MB,
        )
        result["build"] = {
            "seconds": build_s,
            "index_type": built.plan.index_type,
            "factory": built.plan.factory,
            "params": built.params,
            "tuned_recall": built.recall_at_10,
            "tuned_recall_between": built.recall_between,
            "builder_rss_growth_mb": (memory_kb()["VmRSS"] - rss0) / 1024,
        }
        built_type = built.plan.index_type
        del built
    result["memory"] = resident_memory(version)
    index = SearchIndex.load(version)

    cpu = {"ms": 0.0}

    def run(queries, allowed=None):
        found, ms = [], []
        c0 = time.process_time()
        for q in queries:
            t0 = time.perf_counter()
            _, got = index.search(q, K, allowed_ids=allowed)
            ms.append((time.perf_counter() - t0) * 1000)
            found.append(got // 3 - 1)  # back to positions
        cpu["ms"] = (time.process_time() - c0) * 1000 / max(1, len(queries))
        return found, ms

    import faiss

    faiss.omp_set_num_threads(1)
    for name, queries, truth in (("image", image_q, truth_img), ("text", text_q, truth_txt)):
        found, ms = run(queries)
        result[f"{name}_queries"] = {
            "recall_at_10": recall(found, truth),
            "cpu_ms": cpu["ms"],  # process CPU per query: what the shared box can measure
            **percentiles(ms),
        }
    if built_type != "flat":
        # Both cores on one query (MEEPO_FAISS_THREADS=2 sets this up in SearchIndex.load).
        faiss.extract_index_ivf(index.index).parallel_mode = 1
        faiss.omp_set_num_threads(2)
        _, ms = run(image_q)
        result["image_queries_2_threads"] = percentiles(ms)
        faiss.extract_index_ivf(index.index).parallel_mode = 0
        faiss.omp_set_num_threads(1)
    result["filtered"] = bench_filtered(
        index, vectors, ids, text_q[: args.filter_queries], rng, run
    )

    return result


def exact_subset(vectors, rows, q):
    """Baseline: gather the allowed rows and scan them exactly (faiss SIMD, one thread)."""
    import faiss

    sub = np.ascontiguousarray(vectors[rows])
    return faiss.knn(q.reshape(1, -1), sub, min(K, len(rows)), metric=faiss.METRIC_INNER_PRODUCT)


def bench_filtered(index, vectors, ids, queries, rng, run) -> list[dict]:
    rows = []
    for sel in SELECTIVITIES:
        mask = np.zeros(len(ids), dtype=bool)
        mask[rng.choice(len(ids), size=max(1, int(len(ids) * sel)), replace=False)] = True
        truth, _ = exact_topk(vectors, queries, mask=mask)
        found, ms = run(queries, ids[mask])
        sub = np.flatnonzero(mask)
        exact_ms = time_each(lambda q, sub=sub: exact_subset(vectors, sub, q), queries[:30])
        rows.append(
            {
                "selectivity": sel,
                "allowed": int(mask.sum()),
                "recall_at_10": recall(found, truth),
                **percentiles(ms),
                "exact_subset_p50": percentiles(exact_ms)["p50"],
            }
        )
    return rows


def sampled_run(cmd: list[str], env: dict[str, str]) -> dict:
    """Run cmd; its wall time, exit code, peak RSS / RssAnon / RssFile (MB) and last line."""
    from bench.common import memory_kb

    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
    while proc.poll() is None:
        try:
            now = memory_kb(proc.pid)
        except (FileNotFoundError, ProcessLookupError):
            break
        peak = {k: max(v, now.get(k, 0)) for k, v in peak.items()}
        time.sleep(0.25)
    out = proc.communicate()[0].decode().strip().splitlines()
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "exit": proc.returncode,
        "peak_rss_mb": peak["VmRSS"] // 1024,
        "peak_anon_mb": peak["RssAnon"] // 1024,
        "peak_file_mb": peak["RssFile"] // 1024,
        "summary": out[-1] if out else "",
    }


def bench_build_db(data_dir: Path, add: int) -> list[dict]:
    """Full and incremental `build_index` on an existing catalogue, with the builder's RSS."""
    import os

    env = {**os.environ, "MEEPO_DATA_DIR": str(data_dir), "MEEPO_DEBUG": "true"}
    env.setdefault("MEEPO_LOG_LEVEL", "WARNING")
    manage = [sys.executable, "manage.py"]

    def build(label: str, *flags: str) -> dict:
        row = {"run": label, **sampled_run([*manage, "build_index", *flags], env)}
        manifest = json.loads((data_dir / "index" / "current" / "manifest.json").read_text())
        row["phases_s"] = manifest.get("build", {}).get("phases_s", {})
        return row

    rows = [build("full (--force)", "--force")]
    if add:
        code = f"from tests.deploy.catalogue import add_products; add_products({add}, seed=5)"
        subprocess.run([*manage, "shell", "-c", code], env=env, check=True)
        rows.append(build(f"incremental (+{add})"))
    return rows


def kind_configs(n: int, nlist: int, hnsw_max: int):
    """(name, factory, knob name, knob values): the candidates for one catalogue size."""
    probes = [p for p in (8, 16, 32, 64, 128, 256) if p <= nlist // 2]
    out = [
        ("flat", "Flat", "", [0]),
        ("sqfp16", "SQfp16", "", [0]),
        ("ivf_flat", f"IVF{nlist},Flat", "nprobe", probes),
        ("ivf_sq8", f"IVF{nlist},SQ8", "nprobe", probes),
        ("ivf_sq8+rerank4", f"IVF{nlist},SQ8", "nprobe", probes),
    ]
    if 2 * nlist * 39 <= n:  # twice the lists, as many training points per list as the builder
        out.append(("ivf_flat", f"IVF{2 * nlist},Flat", "nprobe", [2 * p for p in probes]))
    if n <= hnsw_max:
        out.append(("hnsw32", "HNSW32", "efSearch", [64, 128, 256]))
    return out


def build_kind(name: str, factory: str, vectors: np.ndarray):
    import faiss

    t0, c0 = time.perf_counter(), time.process_time()
    index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    if "IVF" in factory:
        ivf = faiss.extract_index_ivf(index)
        nlist = ivf.nlist
        ivf.cp.spherical, ivf.cp.niter = True, 10  # as pipeline.indexing.faiss_build trains
        sample = np.random.default_rng(1).choice(len(vectors), min(len(vectors), 40 * nlist), False)
        index.train(vectors[np.sort(sample)])
    index.add(vectors)
    if "rerank" in name:
        index = faiss.IndexRefineFlat(index, faiss.swig_ptr(vectors))
    return index, time.perf_counter() - t0, time.process_time() - c0


def search_params_for(name: str, knob: str, value: int):
    import faiss

    if knob == "nprobe" and "rerank" in name:
        k_factor = int(name.rsplit("rerank", 1)[1])
        base = faiss.SearchParametersIVF(nprobe=value)
        return faiss.IndexRefineSearchParameters(k_factor=k_factor, base_index_params=base), base
    if knob == "nprobe":
        return faiss.SearchParametersIVF(nprobe=value), None
    if knob == "efSearch":
        return faiss.SearchParametersHNSW(efSearch=value), None
    return None, None


def measure_kind(index, params, vectors, sets) -> dict:
    """Recall per query set, CPU ms per single query (one thread), worst score error."""
    row: dict = {}
    errors = []
    for label, queries, truth in sets:
        found, cpu = [], 0.0
        for q in queries:
            c0 = time.process_time()
            scores, labels = index.search(q.reshape(1, -1), K, params=params)
            cpu += time.process_time() - c0
            found.append(labels[0])
            ok = labels[0] >= 0
            exact = vectors[labels[0][ok]] @ q
            errors.append(float(np.abs(scores[0][ok] - exact).max()) if ok.any() else 0.0)
        row[f"R@10 {label}"] = round(recall(found, truth), 4)
        row[f"cpu ms {label}"] = round(cpu * 1000 / len(queries), 3)
    row["max score err"] = float(max(errors))
    return row


def bench_kinds(n: int, args) -> list[dict]:
    """Every candidate kind at size n on one data set; rows for the table."""
    import tempfile

    import faiss

    from pipeline.indexing.faiss_build import _nlist

    faiss.omp_set_num_threads(2)  # builds use both cores, as build_index does
    rng = np.random.default_rng(n)
    if args.data == "clustered":
        from bench.search_catalogue import CLUSTERS, planted_vectors

        planted = planted_vectors(rng.integers(0, CLUSTERS, n + 2 * args.queries))
        vectors, image_q = planted[:n], planted[n : n + args.queries]
        text_q = _unit(planted[n + args.queries :] + ClipLike().gap)
    else:
        gen = ClipLike()
        vectors = gen.items(n, rng)
        image_q, text_q = (
            gen.items(args.queries, rng, dup_fraction=0),
            gen.text_queries(args.queries, rng),
        )
    sets = [
        ("img", image_q, exact_topk(vectors, image_q)[0]),
        ("txt", text_q, exact_topk(vectors, text_q)[0]),
    ]
    nlist = _nlist(n)
    rows = []
    for name, factory, knob, values in kind_configs(n, nlist, args.hnsw_max):
        faiss.omp_set_num_threads(2)
        index, wall_s, cpu_s = build_kind(name, factory, vectors)
        with tempfile.NamedTemporaryFile(suffix=".faiss") as f:
            faiss.write_index(index, f.name)
            size_mb = Path(f.name).stat().st_size / 2**20
        faiss.omp_set_num_threads(1)  # one query, one thread: as a web worker searches
        for value in values:
            params, keep = search_params_for(name, knob, value)
            row = {
                "n": n,
                "kind": name,
                "factory": factory,
                "knob": f"{knob}={value}" if knob else "-",
            }
            row |= {
                "build s": round(wall_s, 1),
                "build cpu s": round(cpu_s, 1),
                "index MB": round(size_mb, 1),
            }
            row |= measure_kind(index, params, vectors, sets)
            rows.append(row)
            del keep
            print_table([row])
        del index
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=300, help="queries per set")
    parser.add_argument("--filter-queries", type=int, default=100)
    parser.add_argument(
        "--exact-max", type=int, default=None, help="override MEEPO_INDEX_EXACT_MAX"
    )
    parser.add_argument("--json", help="also write the JSON result here")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (index files)")
    parser.add_argument(
        "--reuse-index", metavar="VERSION_DIR", help="search-only: an index built by a previous run"
    )
    parser.add_argument(
        "--build-db", metavar="DATA_DIR", help="time build_index on this catalogue (see above)"
    )
    parser.add_argument("--add", type=int, default=500, help="with --build-db: products to add")
    parser.add_argument("--kinds", action="store_true", help="compare index kinds (see above)")
    parser.add_argument("--data", choices=["cliplike", "clustered"], default="clustered")
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="--kinds: HNSW up to N")
    args = parser.parse_args()
    if args.kinds:
        data = setup_django()
        shutil.rmtree(data, ignore_errors=True)  # only Django's settings are needed, no files
        rows = [row for n in args.sizes for row in bench_kinds(n, args)]
        print_table(rows)
        emit_json({"machine": machine(), "data": args.data, "kinds": rows}, args.json)
        return
    if args.build_db:
        rows = bench_build_db(Path(args.build_db).resolve(), args.add)
        print_table([{k: v for k, v in r.items() if k != "phases_s"} for r in rows])
        emit_json({"machine": machine(), "build_db": rows}, args.json)
        return
    data = setup_django()
    gen = ClipLike()
    results = []
    for n in args.sizes:
        res = bench_size(n, gen, args)
        results.append(res)
        print_table([summary_row(res)])
        print_table(res["filtered"])
        print(flush=True)
    print_table([summary_row(r) for r in results])
    emit_json({"machine": machine(), "results": results}, args.json)
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)


def summary_row(r: dict) -> dict:
    return {
        "n": r["n"],
        "index": r["build"]["factory"],
        "nprobe": r["build"]["params"].get("nprobe", "-"),
        "build_s": r["build"].get("seconds", "reused"),
        "R@10 img": r["image_queries"]["recall_at_10"],
        "R@10 txt": r["text_queries"]["recall_at_10"],
        "cpu ms img": r["image_queries"]["cpu_ms"],
        "cpu ms txt": r["text_queries"]["cpu_ms"],
        "p50 ms": r["image_queries"]["p50"],
        "p99 ms": r["image_queries"]["p99"],
        "txt p99": r["text_queries"]["p99"],
        "2thr p50": r.get("image_queries_2_threads", {}).get("p50", "-"),
        "flat p50": r["exact_flat"]["p50"],
        "flat p99": r["exact_flat"]["p99"],
        "private MB": r["memory"]["private_mb"],
        "shared MB": r["memory"]["shared_file_mb"],
        "index MB": r["memory"]["index_file_mb"],
    }


if __name__ == "__main__":
    main()
