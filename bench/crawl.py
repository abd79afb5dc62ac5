"""Crawl benchmark: many fixture stores at once versus the sum of their own crawls.

    python -m bench.crawl [--stores 20] [--products 50] [--delay 0.2] [--slow-latency 1.0]
                          [--concurrency N] [--json out.json]

Starts `--stores` demo shops on 127.0.0.1 (Shopify, WooCommerce and schema.org in turn, each
`--products` products), one of them answering its listing requests `--slow-latency` seconds
late, registers them with `--delay` as crawl delay, then runs one `scrape_stores` cycle on a
throwaway database. Reports, from the same run:
  wall        the cycle's wall time
  serial sum  the sum of every store's own crawl time (its CrawlRun start to finish)
  slowest     the slowest store's own crawl, and the cycle / slowest ratio (goal <= 1.3)
  min gap     the smallest gap between two requests to one shop, on the shop's own log
              (goal >= the delay), and products lost (goal 0)
"""

from __future__ import annotations

import argparse
import itertools

from bench.common import emit_json, machine, print_table, setup_django, stopwatch

FLAVOURS = ("shopify", "woocommerce", "schema_org")


def main() -> None:
    """Long: the arguments, the shops, the crawl and the report, read top to bottom."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--products", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--slow-latency", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, help="default: one thread per store")
    parser.add_argument("--json")
    args = parser.parse_args()

    setup_django(migrate=True)
    from django.conf import settings

    from catalog.models import CrawlRun, Product
    from demo.shop import DemoShop
    from pipeline.scrape import add_store, scrape_stores

    settings.MEEPO_ALLOWED_LOOPBACK = ["127.0.0.1:*"]
    shops = [
        DemoShop(flavour=FLAVOURS[i % 3], products=args.products, seed=i).start()
        for i in range(args.stores)
    ]
    try:
        for i, shop in enumerate(shops):
            add_store(shop.base_url, crawl_delay=args.delay, slug=f"s{i:02d}")
            shop.clear_requests()
        slow = shops[0]
        slow.add_fault("/products.json*", "delay", seconds=args.slow_latency)
        with stopwatch() as wall:
            report = scrape_stores(concurrency=args.concurrency or args.stores)
        runs = list(CrawlRun.objects.order_by("store__slug"))
        own = [(r.finished_at - r.started_at).total_seconds() for r in runs]
        gaps = [_min_gap(shop) for shop in shops]
        lost = sum(
            max(0, args.products - Product.objects.filter(store__slug=f"s{i:02d}").count())
            for i in range(args.stores)
        )
    finally:
        for shop in shops:
            shop.stop()
    result = {
        "stores": args.stores,
        "products_per_store": args.products,
        "delay_s": args.delay,
        "slow_latency_s": args.slow_latency,
        "concurrency": args.concurrency or args.stores,
        "wall_s": round(wall(), 2),
        "serial_sum_s": round(sum(own), 2),
        "slowest_store_s": round(max(own), 2),
        "wall_over_slowest": round(wall() / max(own), 3),
        "min_gap_s": round(min(gaps), 3),
        "requests": sum(len(s.requests) for s in shops),
        "products_created": report.created,
        "products_lost": lost,
        "failed": report.failed,
        "machine": machine(),
    }
    print_table(
        [result],
        [
            "wall_s",
            "serial_sum_s",
            "slowest_store_s",
            "wall_over_slowest",
            "min_gap_s",
            "products_lost",
        ],
    )
    emit_json(result, args.json)


def _min_gap(shop) -> float:
    times = sorted(r.time for r in shop.requests)
    return min((b - a for a, b in itertools.pairwise(times)), default=float("inf"))


if __name__ == "__main__":
    main()
