"""Redis locks of distributed mode, and the per-host gate across two 'machines'."""

import itertools
import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings

from pipeline.distributed.locks import LockHeld, held_locks, redis_lock, token_label
from tests.distributed.conftest import ROOT
from tests.gate_race import race_for_products_json


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


@pytest.mark.django_db(transaction=True)
def test_gate_holds_between_two_machines_through_redis(broker, fast_crawl, shopify_shop, tmp_path):
    fast_crawl.MEEPO_CRAWL_JITTER = 0.0
    # A second 'machine': its own data directory (so no shared flock files), the same database
    # and Redis.
    other_machine = {"MEEPO_BROKER_URL": broker, "MEEPO_DATA_DIR": str(tmp_path / "other-machine")}
    race_for_products_json(shopify_shop.base_url, delay=0.3, env=other_machine)
    times = sorted(r.time for r in shopify_shop.requests if r.path == "/products.json")
    assert len(times) == 6
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.3
