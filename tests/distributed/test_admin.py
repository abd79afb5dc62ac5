"""The admin's task failure page shows the live queue status above the recorded failures."""

import pytest
from bs4 import BeautifulSoup

from pipeline.distributed.locks import redis_lock
from pipeline.models import TaskFailure

pytestmark = pytest.mark.django_db


def test_failure_list_shows_queues_locks_and_failures(broker, admin_client, redis_url):
    import redis

    redis.Redis.from_url(redis_url).lpush("embed", "{}", "{}")
    TaskFailure.objects.create(task_name="t.embed_batch", task_id="x1", error="Boom: no model")

    with redis_lock("builder", label="build"):
        response = admin_client.get("/admin/pipeline/taskfailure/")

    assert response.status_code == 200
    page = BeautifulSoup(response.content, "html.parser")
    status = page.select_one("#pipeline-status")
    depths = {row.td.text: row.select("td")[1].text for row in status.select("tbody tr")}
    assert depths["embed"] == "2"
    assert depths["crawl"] == "0"
    assert "builder" in status.text
    assert "Boom: no model" in page.select_one("#result_list").text


def test_failure_list_says_when_redis_is_unreachable(admin_client, settings):
    settings.MEEPO_BROKER_URL = ""
    response = admin_client.get("/admin/pipeline/taskfailure/")
    assert response.status_code == 200
    assert "distributed mode is off" in response.content.decode()
