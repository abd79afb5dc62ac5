"""nginx (deploy/nginx/meepo.conf) in front of gunicorn (deploy/gunicorn.conf.py), for real."""

import gzip
import io
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.deploy.stack import http, multipart

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


def test_text_search_through_nginx_lists_products(stack):
    status, headers, body = http(f"{stack.base_url}/search?q=red+chair")

    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert len(re.findall(rb'href="/products/\d+"', body)) >= 10
    assert headers["X-Frame-Options"] == "DENY"


def _jpeg():
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 40, 40)).save(out, "JPEG")
    return out.getvalue()


def test_photo_upload_through_nginx_finds_similar_products(stack):
    # The HTML form: CSRF cookie and token from the page, then the multipart POST.
    status, headers, page = http(f"{stack.base_url}/search/image")
    assert status == 200
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    body, content_type = multipart(
        {"csrfmiddlewaretoken": token}, {"image": ("photo.jpg", _jpeg(), "image/jpeg")}
    )

    status, _, html = http(f"{stack.base_url}/search/image", method="POST", data=body,
                           headers={"Content-Type": content_type, "Cookie": cookie})  # fmt: skip

    assert status == 200, html[:2000]
    assert len(re.findall(rb'href="/products/\d+"', html)) >= 10


def test_photo_upload_to_the_json_api_through_nginx(stack):
    body, content_type = multipart({"limit": "5"}, {"image": ("p.jpg", _jpeg(), "image/jpeg")})

    status, _, answer = http(f"{stack.base_url}/api/search/image", method="POST", data=body,
                             headers={"Content-Type": content_type})  # fmt: skip

    assert status == 200, answer[:2000]
    assert len(json.loads(answer)["results"]) == 5


# Last in the module: it spends the rate limit's burst allowance for 127.0.0.1.
def test_search_burst_is_rate_limited_with_429(stack):
    url = f"{stack.base_url}/search?q=chair"
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: http(url)[0], range(60)))

    assert statuses.count(429) >= 20, statuses
    assert all(status in (200, 429, 503) for status in statuses), stack.logs()
    log = (stack.workdir / "error.log").read_text()
    assert re.search(r"limiting requests, excess: .* by zone \"meepo_search\"", log)
