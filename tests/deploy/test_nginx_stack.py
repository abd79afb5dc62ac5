"""nginx (deploy/nginx/meepo.conf) in front of gunicorn (deploy/gunicorn.conf.py), for real."""

import gzip
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.deploy.stack import http

pytestmark = pytest.mark.slow


def _static_css_path(stack):
    manifest = json.loads((stack.data_dir / "staticfiles" / "staticfiles.json").read_text())
    return "/static/" + manifest["paths"]["admin/css/base.css"]


def test_healthz_answers_through_nginx(stack):
    status, headers, body = http(f"{stack.base_url}/healthz")

    assert status == 200
    assert json.loads(body)["database"]["ok"] is True
    assert headers["Server"] == "nginx"  # server_tokens off: no version


def test_hashed_static_files_are_cached_for_a_year_and_compressed(stack):
    url = stack.base_url + _static_css_path(stack)

    status, headers, body = http(url, headers={"Accept-Encoding": "gzip"})

    assert status == 200
    assert headers.get_all("Cache-Control") == ["public, max-age=31536000, immutable"]
    assert headers["Content-Encoding"] == "gzip"
    assert b"body" in gzip.decompress(body)
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_media_thumbnails_are_served_by_nginx_with_cache_headers(stack):
    thumb = stack.data_dir / "media" / "thumbs" / "ab" / "cd" / "abcd.jpg"
    thumb.parent.mkdir(parents=True, exist_ok=True)
    thumb.write_bytes(b"\xff\xd8\xff" + b"0" * 100)

    status, headers, body = http(f"{stack.base_url}/media/thumbs/ab/cd/abcd.jpg")

    assert status == 200
    assert headers["Content-Type"] == "image/jpeg"
    assert headers.get_all("Cache-Control") == ["public, max-age=2592000"]
    assert body.startswith(b"\xff\xd8\xff")


def test_pages_carry_security_headers(stack):
    status, headers, body = http(f"{stack.base_url}/admin/login/")

    assert status == 200
    assert b"csrfmiddlewaretoken" in body
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_too_large_upload_is_refused_by_nginx_with_413(stack):
    body = b"x" * (12 * 1024 * 1024)

    status, _, _ = http(f"{stack.base_url}/search/image", method="POST", data=body,
                        headers={"Content-Type": "application/octet-stream"})  # fmt: skip

    assert status == 413


def test_unknown_hosts_are_refused(stack):
    status, _, _ = http(f"{stack.base_url}/admin/login/", headers={"Host": "evil.example"})

    assert status == 400


# Last in the module: it spends the rate limit's burst allowance for 127.0.0.1.
def test_search_burst_is_rate_limited_with_429(stack):
    url = f"{stack.base_url}/search?q=chair"
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: http(url)[0], range(60)))

    assert statuses.count(429) >= 20, statuses
    assert all(status in (200, 429, 503) for status in statuses), stack.logs()
    log = (stack.workdir / "error.log").read_text()
    assert re.search(r"limiting requests, excess: .* by zone \"meepo_search\"", log)
