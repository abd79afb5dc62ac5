"""`make run` end to end: a fresh data directory, the bundled demo shop crawled by the real
scraper, embedded with the tiny random CLIP, indexed, and served by gunicorn on 127.0.0.1."""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.deploy.stack import ROOT, app_env, free_port, http, manage

pytestmark = pytest.mark.slow


def _wait_for(url, *, process, log, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"make run exited with {process.returncode}:\n{log.read_text()[-6000:]}")
        try:
            status, _, body = http(url, timeout=10)
            if status == 200:
                return body
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} not answering after {timeout}s:\n{log.read_text()[-6000:]}")


@pytest.fixture
def make_run(tmp_path, tiny_clip_dir):
    port = free_port()
    log = tmp_path / "make-run.log"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "MEEPO_DATA_DIR": str(tmp_path / "data"),
        "MEEPO_CLIP_MODEL": str(tiny_clip_dir),
        "MEEPO_LOG_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
    }
    with log.open("w") as out:
        process = subprocess.Popen(["make", "--no-print-directory", "run", f"PORT={port}"], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    yield f"http://127.0.0.1:{port}", process, log
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=60)


def test_make_run_crawls_the_demo_shop_indexes_it_and_serves_search(make_run):
    base_url, process, log = make_run

    # A word the demo shop's titles use: the random demo model's look-alikes are (rightly) cut
    # by the relevance floor, so a query must match words to list products.
    body = _wait_for(f"{base_url}/search?q=fork", process=process, log=log)

    health = json.loads(http(f"{base_url}/healthz")[2])
    assert health["status"] == "ok", health
    assert health["index"]["info"]["vectors"] > 0
    assert len(re.findall(rb'href="/products/\d+"', body)) > 0
    output = log.read_text()
    assert "Crawling http://127.0.0.1:" in output
    assert "Serving on http://127.0.0.1:" in output
    assert Path(ROOT / "var" / ".run-secret-key").is_file()


def test_demo_crawls_meepo_store_url_and_explains_a_missing_model(tmp_path):
    from demo.shop import DemoShop

    env = app_env(tmp_path / "data", MEEPO_CLIP_MODEL=str(tmp_path / "no-model"),
                  MEEPO_ALLOWED_LOOPBACK="127.0.0.1:*", MEEPO_CRAWL_DELAY="0", MEEPO_API_DELAY="0")  # fmt: skip
    with DemoShop(flavour="woocommerce", products=6, seed=3) as shop:
        env["MEEPO_STORE_URL"] = shop.base_url

        result = manage(env, "demo", "--no-serve")

    assert f"Crawling {shop.base_url}" in result.stdout
    assert "first 200 products" in result.stdout
    assert "could not be loaded" in result.stderr
    assert "create_random_model" in result.stderr
    assert any(r.path.startswith("/wp-json/") for r in shop.requests)
