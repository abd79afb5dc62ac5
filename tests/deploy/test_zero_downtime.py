"""Publishing a new index while shoppers search: no request fails, none sees a locked database.

Real servers (nginx -> gunicorn, 2 workers) and real pipeline commands in their own processes,
writing the same SQLite database the workers read, as cron does in production."""

import json
import threading
import time
from urllib.parse import quote

import pytest

from tests.deploy.catalogue import queries
from tests.deploy.stack import Stack, http, manage

pytestmark = pytest.mark.slow

ADD = "from tests.deploy.catalogue import add_products; add_products({n}, with_thumbnails={t})"


@pytest.fixture(scope="module")
def catalogued_stack(stack_data):
    data, env = stack_data
    manage(env, "shell", "-c", ADD.format(n=400, t=0))
    manage(env, "build_index")
    # All load comes from 127.0.0.1: lift the per-IP rate limit, which another test covers.
    running = Stack(data_dir=data, env=env, search_rate="100000r/s").start()
    yield running
    running.stop()


def _health(stack):
    return json.loads(http(f"{stack.base_url}/healthz")[2])


class LoadGenerator:
    """A few threads sending searches (HTML and JSON API) until stopped; records every answer."""

    def __init__(self, base_url, threads=4):
        self.base_url, self.stop, self.results = base_url, threading.Event(), []
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, worker):
        words = queries()
        i = worker
        while not self.stop.is_set():
            q = quote(words[i % len(words)])
            path = f"/api/search?q={q}" if i % 2 else f"/search?q={q}"
            started = time.monotonic()
            try:
                status, _, body = http(self.base_url + path, timeout=30)
            except OSError as exc:  # a refused or reset connection is a failed request too
                status, body = 0, repr(exc).encode()
            self.results.append((path, status, body, time.monotonic() - started))
            i += 4

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def test_publishing_an_index_under_load_fails_no_request(catalogued_stack, stack_data):
    stack, (_, env) = catalogued_stack, stack_data
    before = _health(stack)["index"]["info"]

    with LoadGenerator(stack.base_url) as load:
        time.sleep(1.0)
        # What the nightly pipeline does: write products, embed their images, publish an index.
        manage(env, "shell", "-c", ADD.format(n=300, t=40))
        manage(env, "embed")
        manage(env, "build_index")
        time.sleep(2.0)  # workers notice index/current within MEEPO_INDEX_RELOAD_SECONDS (0.5 s)
    after = _health(stack)["index"]["info"]

    failed = [(path, status, body[:300]) for path, status, body, _ in load.results if status != 200]
    locked = [path for path, _, body, _ in load.results if b"database is locked" in body]
    assert len(load.results) >= 50, "the load generator barely ran"
    assert failed == [], failed[:5]
    assert locked == []
    assert "database is locked" not in stack.logs()
    assert after["version"] != before["version"]
    assert after["vectors"] == before["vectors"] + 300
    api_answers = [json.loads(body) for path, _, body, _ in load.results[-40:] if "/api/" in path]
    assert any(answer["results"] for answer in api_answers)
