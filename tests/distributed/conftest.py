"""Fixtures of distributed mode: a real redis-server on a free loopback port, real workers."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("worker.py")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """redis-server from Debian's package, in a temp dir, no persistence, 127.0.0.1 only."""
    import redis

    assert Path(REDIS_SERVER).exists(), "redis-server is missing: `make test-deps` installs it"
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = subprocess.Popen(
        [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir),
         "--save", "", "--appendonly", "no", "--logfile", str(workdir / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)

    def answers():
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    try:
        wait_until(answers, 20, "redis-server to answer")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def broker(settings, redis_url):
    """Distributed mode on, against an empty Redis."""
    import redis

    from meepo.celery import app

    redis.Redis.from_url(redis_url).flushall()
    settings.MEEPO_BROKER_URL = redis_url
    app.conf.update(broker_url=redis_url, result_backend=redis_url)
    return redis_url


@pytest.fixture
def start_worker(broker, settings, tiny_clip, tmp_path):
    """start_worker(name, queues="embed", visibility=30, slow=0, **env) -> a `celery worker`."""
    from django.db import connection

    processes = []

    def start(name, *, queues="embed", visibility=30, slow=0.0, **extra_env):
        env = {
            **os.environ,
            "MEEPO_BROKER_URL": broker,
            "MEEPO_TASK_VISIBILITY_TIMEOUT": str(visibility),
            "MEEPO_CLIP_MODEL": str(tiny_clip),
            "MEEPO_DATA_DIR": str(settings.MEEPO_DATA_DIR),
            "MEEPO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "MEEPO_EMBED_BATCH": "2",
            "MEEPO_TEST_SLOW_BATCH": str(slow),
            "MEEPO_TORCH_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            **extra_env,
        }
        log = (tmp_path / f"worker-{name}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), connection.settings_dict["NAME"], f"{name}@%h", queues],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        proc.log_path = tmp_path / f"worker-{name}.log"
        processes.append(proc)
        return proc

    yield start
    for proc in processes:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
