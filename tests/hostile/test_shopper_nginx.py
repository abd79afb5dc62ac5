"""The shopper-side bounds nginx adds in front of gunicorn (deploy/nginx/meepo.conf), for real:
photo uploads and admin logins have their own, lower rate limits; errors nginx answers under
/api/ are JSON; an upload body is held in memory, never written to a temporary file."""

import json
import socket
import time

import pytest

from tests.deploy.stack import Stack, app_env, http, manage, multipart
from tests.hostile.shopper_inputs import photo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory, tiny_clip_dir):
    data = tmp_path_factory.mktemp("hostile-stack")
    env = app_env(data, MEEPO_CLIP_MODEL=str(tiny_clip_dir))
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    running = Stack(data_dir=data, env=env).start()
    yield running
    running.stop()


def _post_photo(stack, path, data=None):
    body, content_type = multipart({}, {"image": ("p.jpg", data or photo(), "image/jpeg")})
    return http(f"{stack.base_url}{path}", method="POST", data=body,
                headers={"Content-Type": content_type})  # fmt: skip


# Order matters: the first tests send a few uploads each, before the rate-limit test uses up the
# burst.
def test_at_most_two_uploads_in_flight_per_client(stack):
    slow = []
    for _ in range(2):  # two uploads whose bodies never finish arriving
        conn = socket.create_connection(("127.0.0.1", stack.port))
        conn.sendall(
            b"POST /api/search/image HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n" + b"\0" * 1000
        )
        slow.append(conn)
    try:
        time.sleep(0.5)  # let nginx register both (not a timing assertion)
        status, _, body = _post_photo(stack, "/api/search/image")
    finally:
        for conn in slow:
            conn.close()

    assert status == 429
    assert "too many requests" in json.loads(body)["error"]
    assert (
        'limiting connections by zone "meepo_upload_conn"'
        in (stack.workdir / "error.log").read_text()
    )


def test_a_big_upload_body_stays_in_nginx_memory(stack):
    big = photo((64, 64)) + b"\0" * (9 * 1024 * 1024)

    status, _, _ = _post_photo(stack, "/api/search/image", big)

    assert status in (400, 503)  # reached Django in one piece (then: not usable / no index)
    assert list((stack.workdir / "tmp" / "body").iterdir()) == []
    assert "buffered to a temporary file" not in (stack.workdir / "error.log").read_text()


def test_an_upload_over_the_body_limit_is_a_json_413_under_api(stack):
    status, headers, body = _post_photo(stack, "/api/search/image", b"\0" * (12 * 1024 * 1024))

    assert status == 413
    assert headers["Content-Type"] == "application/json"
    assert "too large" in json.loads(body)["error"]


def test_photo_uploads_have_their_own_lower_rate_limit_with_json_429(stack):
    statuses = []
    for _ in range(10):
        status, headers, body = _post_photo(stack, "/api/search/image")
        statuses.append(status)
        if status == 429:
            assert headers["Content-Type"] == "application/json"
            assert headers["Retry-After"] == "5"
            assert "too many requests" in json.loads(body)["error"]

    assert 429 in statuses
    assert statuses[0] != 429
    # text search is another zone: still served; the photo page itself (GET) is not limited
    assert http(f"{stack.base_url}/api/search?q=chair")[0] == 200
    assert http(f"{stack.base_url}/search/image")[0] == 200


def test_admin_login_attempts_are_rate_limited_by_nginx(stack):
    refused_by_nginx = 0
    for _ in range(10):
        status, _, body = http(f"{stack.base_url}/admin/login/", method="POST",
                               data=b"username=boss&password=guess",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        if status == 429 and b"<center>nginx</center>" in body:
            refused_by_nginx += 1

    assert refused_by_nginx >= 3
    assert http(f"{stack.base_url}/admin/login/")[0] == 200  # the page itself stays reachable


def test_head_of_healthz_through_nginx(stack):
    status, _, body = http(f"{stack.base_url}/healthz", method="HEAD")

    assert status == 200
    assert body == b""
