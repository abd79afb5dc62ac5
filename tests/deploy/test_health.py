"""/healthz reports database, model and index state with status codes a monitor can act on."""

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError
from django.urls import reverse

from search.health import check_health

pytestmark = pytest.mark.django_db


def _publish(data_dir, *, model, count=42, age=timedelta(minutes=5)):
    version = "20260101T000000Z"
    target = data_dir / "index" / version
    target.mkdir(parents=True)
    created = (datetime.now(UTC) - age).isoformat()
    manifest = {"model": model, "dim": 512, "count": count, "created_at": created}
    (target / "manifest.json").write_text(json.dumps(manifest))
    os.symlink(target, data_dir / "index" / "current")
    return version


def test_healthz_is_degraded_but_serving_before_any_index(client):
    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is True
    assert body["index"]["ok"] is False
    assert "no index published" in body["index"]["detail"]
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_reports_index_version_age_and_vector_count(client, settings, tiny_clip):
    version = _publish(settings.MEEPO_DATA_DIR, model=str(tiny_clip), count=1234)

    body = client.get(reverse("healthz")).json()

    assert body["status"] == "ok"
    assert body["index"]["info"]["version"] == version
    assert body["index"]["info"]["vectors"] == 1234
    assert 250 < body["index"]["info"]["age_seconds"] < 400
    assert body["model"]["ok"] is True
    assert body["model"]["info"]["name"] == str(tiny_clip)


def test_healthz_flags_an_index_built_for_another_model(client, settings, tiny_clip):
    _publish(settings.MEEPO_DATA_DIR, model="some/other-model")

    body = client.get(reverse("healthz")).json()

    assert body["status"] == "degraded"
    assert "another model" in body["index"]["detail"]


def test_healthz_answers_503_when_the_database_fails(client, monkeypatch):
    def broken(*args, **kwargs):
        raise OperationalError("disk I/O error")

    monkeypatch.setattr("search.health.connection.cursor", broken)

    response = client.get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json()["status"] == "down"


def test_check_health_returns_a_report_without_loading_the_model(settings):
    settings.MEEPO_CLIP_MODEL = "/nonexistent/clip"

    report = check_health()

    assert report.is_serving
    assert report.model.ok is False
    assert report.model.info["loaded_in_this_worker"] is False
