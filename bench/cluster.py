"""Distributed-mode benchmark: how embedding and crawling scale with Celery workers on this machine.

    python -m bench.cluster [--images 192] [--embed-batch 8] [--stores 20] [--products 20]
                            [--delay 0.2] [--crawl-concurrency 5] [--json out.json]

Runs the real distributed pieces on 127.0.0.1 (tests/cluster/harness.py): a throwaway PostgreSQL
15, Redis, and Celery workers started with `celery -A meepo worker`, fed by `manage.py
enqueue_cycle`, as in production.

  embed   --images 512x512 JPEG thumbnails (bench/embed.py's catalogue) embedded by the real
          ViT-B/32 shape with random weights (the default model's cost), tasks of 2 x
          --embed-batch images, by 1 worker x 1 torch thread, 2 workers x 1 thread, and 1 worker
          x 2 threads (the one-process alternative). images/s = the steady rate between the 10th
          and the 90th percentile of the vectors' commit times (model loading excluded); the
          scaling ratio is 2 workers / 1 worker.
  crawl   --stores fixture shops (bench/crawl.py's: Shopify, WooCommerce, schema.org in turn,
          --products each, --delay between requests) crawled by one cycle on 1 and on 2 crawl
          workers (`--pool threads --concurrency N` each), each run on a fresh database:
          the cycle's wall time (enqueue to the last store's end), CPU seconds of the workers and
          CPU ms per request (what sizes crawl machines: docs/scale.md).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.common import emit_json, machine, print_table, random_vit_b32

FLAVOURS = ("shopify", "woocommerce", "schema_org")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children, living or reaped, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(v) for v in fields[11:15]) / TICKS
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return total + sum(cpu_seconds(int(child)) for child in children)


def steady_rate(times: list[float]) -> float:
    """Vectors per second between the 10th and 90th percentile of their commit times."""
    times = sorted(times)
    lo, hi = int(0.1 * len(times)), int(0.9 * len(times)) - 1
    span = times[hi] - times[lo]
    return (hi - lo) / span if span > 0 else float("nan")


def embed_run(cluster, label: str, workers: int, threads: int, n: int) -> dict:
    from tests.cluster.harness import wait_for

    cluster.sql("DELETE FROM search_embedding")
    cluster.sql("DELETE FROM search_embeddingfailure")
    import redis

    redis.Redis(port=cluster.redis_port).flushall()
    names = [f"{label}-{i}" for i in range(workers)]
    for name in names:
        cluster.start_worker(name, "embed", MEEPO_TORCH_THREADS=str(threads))
    cluster.wait_ready(*names)
    started = time.time()
    cluster.manage(cluster.builder_data, "enqueue_cycle", "--no-crawl", "--force")

    def done():
        return cluster.sql("SELECT count(*) FROM search_embedding")[0][0] >= n

    wait_for(f"{label}: {n} vectors", done, 1800, every=0.5)
    times = [t for (t,) in cluster.sql("SELECT extract(epoch FROM created_at)::float FROM search_embedding")]  # fmt: skip
    cpu = sum(cpu_seconds(cluster.worker_services[name].process.pid) for name in names)
    logs = "".join(cluster.worker_services[name].tail(200_000) for name in names)
    for name in names:
        cluster.worker_services[name].stop()
    return {
        "run": label,
        "encoder": "int8" if "int8 encoder enabled" in logs else "fp32",
        "workers": workers,
        "torch_threads": threads,
        "images": n,
        "images_per_s": round(steady_rate(times), 2),
        "wall_s": round(max(times) - started, 1),
        "worker_cpu_s": round(cpu, 1),
    }


def add_shops(cluster, args, workers: int) -> list:
    """A fresh database (a copy of the empty migrated one) and media directory for this run,
    Redis emptied, and --stores fixture shops started and added as stores."""
    from demo.shop import DemoShop

    database = f"crawl_{workers}"
    cluster.postgres.psql("postgres", f"CREATE DATABASE {database} TEMPLATE migrated")
    cluster.database = database
    cluster.media = Path(tempfile.mkdtemp(prefix="media-", dir=cluster.root))
    import redis

    redis.Redis(port=cluster.redis_port).flushall()
    shops = [
        DemoShop(flavour=FLAVOURS[i % 3], products=args.products, seed=i).start()
        for i in range(args.stores)
    ]
    lines = ["from pipeline.scrape import add_store"] + [
        f"add_store({s.base_url!r}, slug='s{i:02d}', crawl_delay={args.delay})"
        for i, s in enumerate(shops)
    ]
    try:
        cluster.manage(cluster.builder_data, "shell", "-c", "\n".join(lines))
    except BaseException:
        for shop in shops:
            shop.stop()
        raise
    for shop in shops:
        shop.clear_requests()
    return shops


def crawl_cycle(cluster, args, workers: int) -> dict:
    """One crawl cycle on `workers` crawl workers: its wall time, slowest store, products and
    the workers' CPU seconds."""
    from tests.cluster.harness import wait_for

    names = [f"crawl{workers}-{i}" for i in range(workers)]
    pool = ("--pool", "threads", "--concurrency", str(args.crawl_concurrency))
    for name in names:
        cluster.start_worker(name, "crawl", args=pool)
    cluster.wait_ready(*names)
    started = time.time()
    cluster.manage(cluster.builder_data, "enqueue_cycle")

    def finished():
        rows = cluster.sql("SELECT count(*) FROM catalog_crawlrun WHERE finished_at IS NOT NULL")
        return rows[0][0] >= args.stores

    wait_for(f"{args.stores} crawls", finished, 3600, every=0.5)
    ((last, slowest, products),) = cluster.sql(
        "SELECT extract(epoch FROM max(finished_at))::float,"
        " extract(epoch FROM max(finished_at - started_at))::float,"
        " (SELECT count(*) FROM catalog_product) FROM catalog_crawlrun"
    )
    cpu = sum(cpu_seconds(cluster.worker_services[name].process.pid) for name in names)
    for name in names:
        cluster.worker_services[name].stop()
    return {"cycle_s": last - started, "slowest_s": slowest, "products": products, "cpu_s": cpu}


def crawl_run(cluster, args, workers: int) -> dict:
    shops = add_shops(cluster, args, workers)
    try:
        cycle = crawl_cycle(cluster, args, workers)
        requests = sum(len(s.requests) for s in shops)
    finally:
        for shop in shops:
            shop.stop()
    return {
        "crawl_workers": workers,
        "threads_per_worker": args.crawl_concurrency,
        "stores": args.stores,
        "cycle_s": round(cycle["cycle_s"], 1),
        "slowest_store_s": round(cycle["slowest_s"], 1),
        "requests": requests,
        "products": cycle["products"],
        "worker_cpu_s": round(cycle["cpu_s"], 1),
        "cpu_ms_per_request": round(1000 * cycle["cpu_s"] / max(requests, 1), 1),
    }


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=192)
    parser.add_argument("--embed-batch", type=int, default=8, help="images per forward pass")
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--crawl-concurrency", type=int, default=5, help="threads per crawl worker")
    parser.add_argument("--skip-embed", action="store_true")
    parser.add_argument("--skip-crawl", action="store_true")
    parser.add_argument("--json")
    return parser.parse_args()


def start_cluster(args):
    from tests.cluster.harness import Cluster

    model = random_vit_b32(Path(__file__).resolve().parent / "out")
    return Cluster(
        model_dir=model,
        workers=0,
        web_nodes=0,
        builder=False,
        extra_env={
            "MEEPO_CLIP_QUANTIZE": "auto",  # the production default: int8 when it passes parity
            "MEEPO_EMBED_BATCH": str(args.embed_batch),
            "MEEPO_EMBED_TASK_BATCH": str(2 * args.embed_batch),
            "MEEPO_LOG_LEVEL": "INFO",
        },
    ).start()


def report(args, embed_rows: list[dict], crawl_rows: list[dict]) -> None:
    result = {"embed": embed_rows, "crawl": crawl_rows, "machine": machine(), "args": vars(args)}
    rates = {row["run"]: row["images_per_s"] for row in embed_rows}
    if {"1x1", "2x1"} <= rates.keys():
        result["embed_scaling_2_over_1"] = round(rates["2x1"] / rates["1x1"], 3)
    if len(crawl_rows) == 2:
        result["crawl_speedup_2_over_1"] = round(crawl_rows[0]["cycle_s"] / crawl_rows[1]["cycle_s"], 3)  # fmt: skip
    print_table(embed_rows)
    print()
    print_table(crawl_rows)
    print()
    for key in ("embed_scaling_2_over_1", "crawl_speedup_2_over_1"):
        if key in result:
            print(f"{key}: {result[key]}")
    emit_json(result, args.json)


def main() -> None:
    args = parse_args()
    cluster = start_cluster(args)
    embed_rows, crawl_rows = [], []
    try:
        # An empty, migrated catalogue, copied for each crawl run (before the embed catalogue).
        cluster.postgres.psql("postgres", "CREATE DATABASE migrated TEMPLATE meepo")
        if not args.skip_embed:
            code = f"from pathlib import Path; from django.conf import settings; from bench.embed import make_catalogue; make_catalogue({args.images}, Path(settings.MEDIA_ROOT))"  # fmt: skip
            cluster.manage(cluster.builder_data, "shell", "-c", code)
            for label, workers, threads in (("1x1", 1, 1), ("2x1", 2, 1), ("1x2", 1, 2)):
                embed_rows.append(embed_run(cluster, label, workers, threads, args.images))
        if not args.skip_crawl:
            for workers in (1, 2):
                crawl_rows.append(crawl_run(cluster, args, workers))
    finally:
        cluster.stop()
    report(args, embed_rows, crawl_rows)


if __name__ == "__main__":
    main()
