"""Publishing a new index while shoppers search: no request fails, none sees a locked database.

Real servers (nginx -> gunicorn, 2 workers) and real pipeline commands in their own processes,
writing the same SQLite database the workers read, as cron does in production."""

import json
import time

import pytest

from tests.deploy.catalogue import queries
from tests.deploy.load import LoadGenerator
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


def test_publishing_an_index_under_load_fails_no_request(catalogued_stack, stack_data):
    stack, (_, env) = catalogued_stack, stack_data
    before = _health(stack)["index"]["info"]

    with LoadGenerator(stack.base_url, queries()) as load:
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
