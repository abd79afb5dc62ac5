"""The whole cluster on this machine: PostgreSQL + Redis + 2 Celery workers + a builder + 2 web nodes
behind an nginx upstream (tests/cluster/harness.py), driven as an operator drives it.

1. Five stores (the fixture shop's three flavours, the demo's outlet and its markup-less corner
   shop) are crawled, embedded with the tiny random CLIP and published by one `enqueue_cycle`;
   both web nodes `sync_index` from the builder and answer the same results, through nginx too.
2. A worker is killed with -9 half-way through an embed batch; the other worker finishes it after
   the visibility timeout: every picture has exactly one vector, and the rows written before the
   kill are untouched (nothing embedded twice).
3. A new index is built, published and synced while a client hammers search through nginx: no
   request fails.
"""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from urllib.parse import quote

import pytest

from demo.shop import DemoShop
from tests.cluster.harness import Cluster, wait_for
from tests.deploy.load import LoadGenerator
from tests.deploy.stack import http

# Five minutes on the shared 2-core build machine, start-up included (pytest's default limit is 300 s).
pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(900)]

CYCLE_TIMEOUT = 300
QUERIES = ["shirt", "mug", "lamp", "red", "blue dress", "chair", "vase", "pillow", "bag", "shoe"]


def _shops(specs) -> list[tuple[DemoShop, str]]:
    return [(DemoShop(flavour, products=n, seed=seed, **kw).start(), slug) for slug, flavour, n, seed, kw in specs]  # fmt: skip


def _add_stores(cluster: Cluster, shops) -> None:
    """What an operator types once per store (in one process: Django starts once)."""
    lines = ["from pipeline.scrape import add_store"]
    lines += [
        f"add_store({shop.base_url!r}, slug={slug!r}, crawl_delay=0.0)" for shop, slug in shops
    ]
    cluster.manage(cluster.builder_data, "shell", "-c", "\n".join(lines))


def _cycle_running(cluster: Cluster) -> bool:
    import redis

    return bool(redis.Redis(port=cluster.redis_port).exists("meepo:cycle"))


def _run_cycle(cluster: Cluster, *, before: dict | None) -> dict:
    """enqueue_cycle, then wait until the builder has cleared the cycle and published anew."""
    result = cluster.manage(cluster.builder_data, "enqueue_cycle")
    assert "queued" in result.stdout, result.stdout
    wait_for("the cycle to finish", lambda: not _cycle_running(cluster), CYCLE_TIMEOUT, every=0.5)
    manifest = cluster.builder_manifest()
    assert manifest is not None, "the builder published no index"
    if before is not None:
        assert manifest["version"] != before["version"], "the cycle published no new version"
    return manifest


def _answers(base_url: str) -> dict[str, list]:
    out = {}
    for q in QUERIES:
        status, _, body = http(f"{base_url}/api/search?q={quote(q)}&limit=24")
        assert status == 200, (base_url, q, status, body[:300])
        out[q] = [(hit["id"], hit["image_id"]) for hit in json.loads(body)["results"]]
    return out


def _sync_everywhere(cluster: Cluster, version: str) -> None:
    cluster.sync(*cluster.nodes)
    for node in cluster.nodes:
        wait_for(
            f"{node.name} to serve {version}",
            lambda n=node: (
                cluster.health(n.url).get("index", {}).get("info", {}).get("version") == version
            ),
            30,
        )
    time.sleep(1.5)  # the workers' hot reload checks index/current every 0.5 s


def _embedding_rows(cluster: Cluster) -> dict[int, tuple]:
    rows = cluster.sql("SELECT asset_id, id, updated_at FROM search_embedding")
    return {asset: (pk, updated) for asset, pk, updated in rows}


def _control(cluster: Cluster):
    from celery import Celery

    return Celery(broker=f"redis://127.0.0.1:{cluster.redis_port}/0").control


def test_cluster_crawls_embeds_publishes_survives_a_killed_worker_and_swaps_under_load(cluster):
    try:
        _scenario(cluster)
    except BaseException:
        print(cluster.logs())  # noqa: T201 - shown by pytest with the failure
        raise


def _scenario(cluster: Cluster) -> None:
    shops = _shops([
        ("fixture-shopify", "shopify", 8, 0, {}),
        ("fixture-woo", "woocommerce", 8, 1, {}),
        ("fixture-schema", "schema_org", 8, 2, {}),
        ("demo-outlet", "schema_org", 8, 0, {"price_factor": Decimal("0.9")}),
        ("demo-corner-shop", "schema_org", 6, 5, {"markup": "none"}),
    ])  # fmt: skip
    try:
        _crawl_embed_publish_and_serve(cluster, shops)
        _kill_a_worker_mid_batch(cluster)
        _publish_under_load(cluster)
    finally:
        for shop, _ in shops:
            shop.stop()


def _crawl_embed_publish_and_serve(cluster: Cluster, shops) -> None:
    _add_stores(cluster, shops)
    manifest = _run_cycle(cluster, before=None)

    counts = dict(cluster.sql("SELECT s.slug, count(p.id) FROM catalog_store s JOIN catalog_product p ON p.store_id = s.id GROUP BY s.slug"))  # fmt: skip
    assert counts == {slug: len(shop.products) for shop, slug in shops}
    ((embedded, distinct),) = cluster.sql("SELECT count(*), count(DISTINCT asset_id) FROM search_embedding")  # fmt: skip
    assert embedded > 0
    assert embedded == distinct
    assert _pending(cluster) == 0
    failures = cluster.sql("SELECT task_name, error FROM pipeline_taskfailure")
    assert failures == [], "a task failed for good"

    _sync_everywhere(cluster, manifest["version"])
    direct = [_answers(node.url) for node in cluster.nodes]
    assert direct[0] == direct[1], "the two web nodes answer differently"
    assert sum(map(len, direct[0].values())) > 0, "no query found anything"
    for _ in range(2):  # nginx spreads the requests over the nodes: every answer is the same
        assert _answers(cluster.url) == direct[0]
    # Thumbnails come from the shared media store, through the load balancer.
    status, _, body = http(f"{cluster.url}/api/search?q=shirt")
    thumbs = [hit["thumbnail"] for hit in json.loads(body)["results"] if hit["thumbnail"]]
    assert thumbs
    path = "/media/" + thumbs[0].split("/media/", 1)[1]
    status, headers, body = http(cluster.url + path)
    assert (status, headers["Content-Type"]) == (200, "image/jpeg")
    served_by = set(re.findall(r"^upstream=(\S+)", cluster.access_log(), re.M))
    assert served_by >= {f"127.0.0.1:{node.port}" for node in cluster.nodes}, served_by


def _log_size(worker) -> int:
    return worker.log.stat().st_size


def _planned_embeds(worker, since: int) -> int | None:
    """The number of assets plan_embeds handed out, from the worker's log after `since` bytes."""
    with open(worker.log, "rb") as log:
        log.seek(since)
        text = log.read().decode(errors="replace")
    found = re.findall(r"plan_embeds\[[^]]+\] succeeded .*'assets': (\d+)", text)
    return int(found[-1]) if found else None


def _pending(cluster: Cluster) -> int:
    """Assets that still need a vector (pipeline.embed's own definition), from a Django process."""
    code = "from django.conf import settings; from pipeline.embed import pending_assets; print(pending_assets(settings.MEEPO_CLIP_MODEL).count())"  # fmt: skip
    return int(cluster.manage(cluster.builder_data, "shell", "-c", code).stdout.split()[-1])


def _kill_a_worker_mid_batch(cluster: Cluster) -> None:
    shop = DemoShop("shopify", products=24, seed=11).start()
    w1, w2 = cluster.worker_services["w1"], cluster.worker_services["w2"]
    try:
        _add_stores(cluster, [(shop, "big-shop")])
        control = _control(cluster)
        # Only w1 takes embed tasks, so the batch to interrupt is w1's.
        control.cancel_consumer("embed", destination=["w2@cluster"], reply=True, timeout=10)
        before = cluster.builder_manifest()
        done_before = len(_embedding_rows(cluster))
        since = _log_size(w1)
        cluster.manage(cluster.builder_data, "enqueue_cycle")
        planned = wait_for("plan_embeds", lambda: _planned_embeds(w1, since), CYCLE_TIMEOUT, every=0.1)  # fmt: skip
        assert planned >= 10, planned

        def half_way():
            ((embedded,),) = cluster.sql("SELECT count(*) FROM search_embedding")
            return 1 <= embedded - done_before <= planned - 3

        wait_for("the embed batch to be half-way", half_way, CYCLE_TIMEOUT, every=0.02)
        w1.kill()  # the machine dies: main process and pool child
        written = _embedding_rows(cluster)
        control.add_consumer("embed", destination=["w2@cluster"], reply=True, timeout=10)

        wait_for("the cycle to finish", lambda: not _cycle_running(cluster), CYCLE_TIMEOUT, every=0.5)  # fmt: skip
    finally:
        shop.stop()
    after = _embedding_rows(cluster)
    ((rows, distinct),) = cluster.sql("SELECT count(*), count(DISTINCT asset_id) FROM search_embedding")  # fmt: skip
    assert rows == distinct, "an image has two vectors"
    assert _pending(cluster) == 0, "an image was left without a vector"
    assert rows == done_before + planned
    assert {a: after[a] for a in written} == written, "a vector written before the kill was redone"
    assert len(written) < rows, "nothing was left for the other worker"
    assert re.search(r"embed_batch\[[^]]+\] succeeded", w2.tail(200_000)), "w2 did not finish it"
    assert cluster.sql("SELECT task_name, error FROM pipeline_taskfailure") == []
    assert cluster.builder_manifest()["version"] != before["version"]


def _publish_under_load(cluster: Cluster) -> None:
    shop = DemoShop("woocommerce", products=10, seed=21).start()
    try:
        _add_stores(cluster, [(shop, "late-shop")])
        before = cluster.builder_manifest()
        with LoadGenerator(cluster.url, QUERIES, threads=3) as load:
            time.sleep(1.0)
            manifest = _run_cycle(cluster, before=before)
            _sync_everywhere(cluster, manifest["version"])
    finally:
        shop.stop()
    failed = [(path, status, body[:300]) for path, status, body, _ in load.results if status != 200]
    assert len(load.results) >= 30, "the client barely ran"
    assert failed == [], failed[:5]
    versions = {cluster.health(n.url)["index"]["info"]["version"] for n in cluster.nodes}
    assert versions == {manifest["version"]}
