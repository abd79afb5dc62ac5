"""Two fetchers racing for one host: this process and another one (another command, or another
'machine' with its own data directory). Shared by the gate tests of tests/pipeline and
tests/distributed, which assert on the fixture shop's own request log."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
from pathlib import Path

from django.db import connection

from pipeline.http import Fetcher

ROOT = Path(__file__).resolve().parents[1]

# The other process: sets up Django on the test database, waits for "go", then fetches.
OTHER_FETCHER = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "meepo.settings"
from django.conf import settings
settings.DATABASES["default"]["NAME"] = sys.argv[1]
import django
django.setup()
from pipeline.http import Fetcher
with Fetcher(delay=float(sys.argv[3])) as f:
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(int(sys.argv[4])):
        f.get(sys.argv[2] + "/products.json", kind="api")
print("done", flush=True)
"""


def race_for_products_json(base_url: str, *, delay: float, env: dict[str, str]) -> None:
    """Fetch `/products.json` 3 times here and 3 times in another process at once (the other
    asks right after this one's first request), both with `delay` between their own requests.
    `env` is added to this process's environment for the other one (its data dir, broker...).
    A hung other process fails the test within 60 s instead of blocking it."""
    full_env = {
        **os.environ,
        "MEEPO_ALLOWED_LOOPBACK": "127.0.0.1:*",
        "MEEPO_CRAWL_JITTER": "0",
        **env,
    }
    args = [connection.settings_dict["NAME"], base_url, str(delay), "3"]
    other = subprocess.Popen(
        [sys.executable, "-c", OTHER_FETCHER, *args],
        cwd=ROOT,
        env=full_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert _line(other, 60) == "ready"
        with Fetcher(delay=delay) as f:
            f.get(base_url + "/products.json", kind="api")
            other.stdin.write("go\n")  # back to back: the other one asks at once
            other.stdin.flush()
            for _ in range(2):
                f.get(base_url + "/products.json", kind="api")
        assert _line(other, 60) == "done"
    finally:
        other.kill()
        other.wait()


def _line(proc: subprocess.Popen, timeout: float) -> str:
    """The other process's next stdout line, or an assertion error after `timeout` seconds."""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout), f"the other fetcher said nothing for {timeout} s"
    return proc.stdout.readline().strip()
