"""Redis locks of distributed mode, and the per-host gate across two 'machines'."""

import itertools
import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection

from pipeline.distributed.locks import LockHeld, held_locks, redis_lock, token_label
from pipeline.http import Fetcher
from tests.distributed.conftest import ROOT, wait_until


def test_lock_excludes_a_second_holder_until_released(broker):
    with redis_lock("crawl:shop.example:443", label="store=1") as token:
        with pytest.raises(LockHeld) as held, redis_lock("crawl:shop.example:443", blocking=False):
            pass
        assert held.value.holder == token
        assert token_label(held.value.holder) == "store=1"
        assert [lock["name"] for lock in held_locks()] == ["crawl:shop.example:443"]
    with redis_lock("crawl:shop.example:443", blocking=False):
        pass
    assert held_locks() == []


def test_lock_outlives_its_ttl_while_the_holder_lives(broker):
    with redis_lock("builder", ttl=0.6):
        time.sleep(1.5)  # 2.5 x the ttl: only the renewer keeps it
        with pytest.raises(LockHeld), redis_lock("builder", blocking=False):
            pass


HOLD = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "meepo.settings"
import django
django.setup()
from pipeline.distributed.locks import redis_lock
with redis_lock("builder", ttl=1.0, label="doomed"):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_lock_of_a_worker_killed_with_9_lapses_after_its_ttl(broker):
    env = {**os.environ, "MEEPO_BROKER_URL": broker, "MEEPO_DATA_DIR": str(settings.MEEPO_DATA_DIR)}
    proc = subprocess.Popen([sys.executable, "-c", HOLD], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld), redis_lock("builder", blocking=False):
            pass
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with redis_lock("builder", wait=5.0):  # free within the ttl, without any cleanup
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# A second 'machine': its own data directory (so no shared flock files), the same database and
# Redis. Waits for "go", then fetches back to back.
OTHER_MACHINE = """
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


@pytest.mark.django_db(transaction=True)
def test_gate_holds_between_two_machines_through_redis(broker, fast_crawl, shopify_shop, tmp_path):
    fast_crawl.MEEPO_CRAWL_JITTER = 0.0
    env = {
        **os.environ,
        "MEEPO_BROKER_URL": broker,
        "MEEPO_DATA_DIR": str(tmp_path / "other-machine"),
        "MEEPO_ALLOWED_LOOPBACK": "127.0.0.1:*",
        "MEEPO_CRAWL_JITTER": "0",
    }
    args = [connection.settings_dict["NAME"], shopify_shop.base_url, "0.3", "3"]
    other = subprocess.Popen([sys.executable, "-c", OTHER_MACHINE, *args], cwd=ROOT, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert wait_until(other.stdout.readline, 60, "the other machine").strip() == "ready"
        with Fetcher(delay=0.3) as f:
            f.get(shopify_shop.base_url + "/products.json", kind="api")
            other.stdin.write("go\n")  # back to back: the other machine asks at once
            other.stdin.flush()
            for _ in range(2):
                f.get(shopify_shop.base_url + "/products.json", kind="api")
        assert other.stdout.readline().strip() == "done"
    finally:
        other.kill()
        other.wait()
    times = sorted(r.time for r in shopify_shop.requests if r.path == "/products.json")
    assert len(times) == 6
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.3
