"""Hostile photo uploads (page and API): every one gets a clear 4xx or is searched within bounds.

Shapes that would cost gigabytes in CLIP's preprocessing, pixel bombs, polyglots, SVG, truncated
and empty files, bodies over the limits, and a worker's upload slots all busy. Memory and CPU
ceilings are measured in a fresh subprocess per case (tests/hostile/shopper_probe.py), never
with timers inside the test process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files import uploadedfile
from PIL import Image

from search.images import open_image
from search.security import upload_slot
from tests.hostile.shopper_inputs import (
    GIF_JS,
    HTML_AS_JPEG,
    JPEG_HTML_ZIP,
    PNG_GIGAPIXEL,
    SVG,
    encode,
    photo,
    png_header_bomb,
    upload,
)

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]

REFUSED = [
    pytest.param(png_header_bomb(4000, 1), "elongated", id="strip-4000x1"),
    pytest.param(png_header_bomb(1, 4000), "elongated", id="strip-1x4000"),
    pytest.param(png_header_bomb(20000, 1), "elongated", id="strip-20000x1"),
    pytest.param(png_header_bomb(6500, 6000), "pixel limit", id="bilevel-6500x6000"),
    pytest.param(PNG_GIGAPIXEL, "cannot be used", id="png-65535x65535"),
    pytest.param(SVG, "not a JPEG, PNG or WebP", id="svg-with-script"),
    pytest.param(HTML_AS_JPEG, "cannot be used", id="html-with-jpeg-magic"),
    pytest.param(GIF_JS, "not a JPEG, PNG or WebP", id="gif-javascript-polyglot"),
    pytest.param(photo((300, 300))[:400], "cannot be used", id="truncated-jpeg"),
    pytest.param(b"", "empty", id="zero-bytes"),
]


@pytest.mark.parametrize(("data", "reason"), REFUSED)
def test_api_refuses_hostile_upload_with_json_400(client, data, reason):
    response = client.post("/api/search/image", {"image": upload(data)})

    assert response.status_code == 400
    body = response.json()
    assert reason in body["errors"]["image"][0]


@pytest.mark.parametrize(("data", "reason"), REFUSED)
def test_photo_page_refuses_hostile_upload_with_a_message(client, data, reason):
    response = client.post("/search/image", {"image": upload(data)})

    assert response.status_code == 400
    assert reason in response.content.decode()


def test_jpeg_polyglot_is_only_ever_decoded_as_a_picture_and_never_stored(client, settings):
    response = client.post("/api/search/image", {"image": upload(JPEG_HTML_ZIP)})

    assert response.status_code == 503  # decoded as a JPEG, then no index: nothing kept
    assert response["Content-Type"] == "application/json"
    assert not any(Path(settings.MEDIA_ROOT).rglob("*"))


def test_upload_pixel_cap_is_below_the_crawlers(settings):
    assert settings.MEEPO_MAX_UPLOAD_PIXELS < settings.MEEPO_MAX_IMAGE_PIXELS
    twenty_megapixels = png_header_bomb(5000, 4000)
    assert open_image(twenty_megapixels).size == (5000, 4000)  # a store's picture may be this big


def test_upload_over_the_upload_pixel_cap_is_refused(client):
    response = client.post("/api/search/image", {"image": upload(png_header_bomb(5000, 4000))})

    assert response.status_code == 400
    assert "16000000 pixel limit" in response.json()["errors"]["image"][0]


def test_uploaded_photo_is_decoded_at_reduced_size(client, monkeypatch):
    seen = {}

    def fake_search(*, image, filters, limit):
        seen["size"] = image.size
        raise __import__("search.exceptions").exceptions.IndexNotReady("no index")

    monkeypatch.setattr("search.services.search_by_image", fake_search)
    big = encode(Image.linear_gradient("L").resize((4000, 3000)).convert("RGB"), "JPEG")

    client.post("/api/search/image", {"image": upload(big)})

    assert 448 <= min(seen["size"]) < 896


@pytest.mark.parametrize("path", ["/search/image", "/api/search/image", "/admin/login/", "/search"])
def test_upload_bodies_never_spool_to_a_temporary_file(client, settings, monkeypatch, path):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 2000  # the body below is over it
    spooled = []
    real = uploadedfile.TemporaryUploadedFile.__init__
    monkeypatch.setattr(
        uploadedfile.TemporaryUploadedFile,
        "__init__",
        lambda self, *a, **k: spooled.append(a) or real(self, *a, **k),
    )

    response = client.post(path, {"image": upload(photo((400, 400)) + b"\0" * 5000)})

    assert spooled == []
    assert response.status_code < 500


def test_non_file_fields_over_the_memory_limit_get_a_json_400(client):
    response = client.post("/api/search/image", {"image": upload(photo()), "q": "x" * 3_000_000})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "error" in response.json()


def test_too_many_fields_get_a_json_400(client):
    fields = {f"f{i}": "1" for i in range(1500)}

    response = client.post("/api/search/image", {"image": upload(photo()), **fields})

    assert response.status_code == 400
    assert "error" in response.json()


def test_busy_upload_slots_answer_429_with_retry_after(client, settings):
    settings.MEEPO_UPLOAD_CONCURRENCY = 1
    settings.MEEPO_UPLOAD_WAIT_SECONDS = 0.05

    with upload_slot():  # another request of this worker holds the only slot
        api = client.post("/api/search/image", {"image": upload(photo())})
        page = client.post("/search/image", {"image": upload(photo())})

    assert api.status_code == 429
    assert api["Retry-After"] == "5"
    assert "try again" in api.json()["error"]
    assert page.status_code == 429
    assert "try again" in page.content.decode()


# --- memory and CPU ceilings, each measured alone in a fresh process -----------------------------


def _probe(tmp_path, kind: str, arg: str, **env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if k.startswith(("PATH", "HOME", "LANG", "PYTHON"))}
    run_env = {
        **base,
        "DJANGO_SETTINGS_MODULE": "meepo.settings",
        "MEEPO_SECRET_KEY": "probe",
        "MEEPO_ALLOWED_HOSTS": "testserver",
        "MEEPO_DATA_DIR": str(tmp_path / "probe-data"),
        "MEEPO_LOG_LEVEL": "CRITICAL",
        "HF_HUB_OFFLINE": "1",
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "tests.hostile.shopper_probe", kind, arg],
        cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


UPLOAD_CEILINGS = [
    # (picture, expected status, MB of peak memory the request may add, CPU seconds)
    pytest.param(png_header_bomb(4000, 1), 400, 20, 0.5, id="strip-4000x1"),
    pytest.param(png_header_bomb(20000, 1), 400, 20, 0.5, id="strip-20000x1"),
    pytest.param(png_header_bomb(6500, 6000), 400, 20, 0.5, id="bilevel-39MP"),
    pytest.param(png_header_bomb(4000, 4000), 503, 60, 1.0, id="bilevel-16MP-accepted"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("data", "status", "max_mb", "max_cpu"), UPLOAD_CEILINGS)
def test_hostile_upload_stays_under_memory_and_cpu_ceilings(
    tmp_path, data, status, max_mb, max_cpu
):
    picture = tmp_path / "upload.bin"
    picture.write_bytes(data)

    result = _probe(tmp_path, "upload", str(picture))

    assert result["status"] == status, result
    assert result["growth_mb"] < max_mb, result
    assert result["cpu_s"] < max_cpu, result


@pytest.mark.slow
def test_big_jpeg_upload_is_decoded_at_reduced_size_within_ceilings(tmp_path):
    picture = tmp_path / "upload.jpg"
    picture.write_bytes(encode(Image.linear_gradient("L").resize((4000, 3000)).convert("RGB")))

    result = _probe(tmp_path, "upload", str(picture))

    assert result["status"] == 503, result  # decoded, then no index
    assert result["growth_mb"] < 40, result  # a full-size decode adds ~90 MB


@pytest.mark.slow
@pytest.mark.parametrize(
    ("size", "refused", "max_mb"),
    [("4000x1", True, 20), ("20000x1", True, 20), ("400x20", False, 60), ("640x480", False, 60)],
)
def test_encoder_preprocessing_is_bounded_whatever_reaches_it(
    tmp_path, tiny_clip_dir, size, refused, max_mb
):
    result = _probe(tmp_path, "encoder", size, MEEPO_CLIP_MODEL=str(tiny_clip_dir))

    assert result["outcome"].startswith("refused") is refused, result
    assert result["growth_mb"] < max_mb, result  # 4000x1 used to add ~1.9 GB here


# --- scraped pictures go through the same decoder, with the crawler's higher pixel cap ----------


def test_a_scraped_strip_is_refused_before_decoding():
    from pipeline.images import store_image
    from search.exceptions import UnsupportedImage

    with pytest.raises(UnsupportedImage, match="elongated"):
        store_image(png_header_bomb(4000, 1))


def test_a_big_scraped_jpeg_is_decoded_reduced_but_recorded_at_its_published_size(settings):
    from pipeline.images import store_image

    big = encode(Image.linear_gradient("L").resize((4000, 3000)).convert("RGB"), "JPEG")

    asset = store_image(big)

    assert (asset.width, asset.height) == (4000, 3000)
    thumb = Image.open(Path(settings.MEDIA_ROOT) / asset.thumbnail.name)
    assert thumb.size == (512, 384)
    assert "comment" not in thumb.info
