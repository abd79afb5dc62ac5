"""Liveness and readiness: `check_health()` and the `/healthz` view that monitors and nginx call.

The check is cheap on purpose (one `SELECT`, a readlink, a JSON file): it never loads the CLIP
model or reads the index files, so a monitor polling every few seconds costs nothing. Status:

- ``ok``: the database answers and a published index matches the configured model.
- ``degraded``: the database answers but image search cannot run (no index yet, or one built for
  another model); keyword search still works, so the site is serving: HTTP 200.
- ``down``: the database does not answer: HTTP 503, take the worker out of rotation.

Anyone may ask (GET or HEAD) and learn the status; the details (model path, index version,
database error text) are only for loopback clients and for `Authorization: Bearer
<MEEPO_HEALTH_TOKEN>`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from search.encoder import get_encoder, loaded_encoder
from search.index import CURRENT_LINK, index_root
from search.manifest import Manifest, read_manifest
from search.security import has_operator_token, is_local

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ComponentStatus:
    ok: bool
    detail: str
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class HealthReport:
    status: str  # "ok" | "degraded" | "down"
    database: ComponentStatus
    model: ComponentStatus
    index: ComponentStatus

    @property
    def is_serving(self) -> bool:
        return self.status != "down"

    def as_dict(self) -> dict:
        return asdict(self)


def check_health() -> HealthReport:
    """Check the database, the configured model and the published index without loading either."""
    database = _check_database()
    index = _check_index()
    model = _check_model(index)
    if not database.ok:
        status = "down"
    elif index.ok and model.ok:
        status = "ok"
    else:
        status = "degraded"
    return HealthReport(status=status, database=database, model=model, index=index)


def _check_database() -> ComponentStatus:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not serving"; the log keeps the cause
        logger.exception("healthz: database check failed")
        return ComponentStatus(ok=False, detail=f"database error: {exc}")
    elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    return ComponentStatus(ok=True, detail="answers", info={"latency_ms": elapsed_ms})


def _read_manifest() -> tuple[Path | None, Manifest | None]:
    current = index_root() / CURRENT_LINK
    if not current.exists():
        return None, None
    target = current.resolve()
    try:
        return target, read_manifest(target)
    except (OSError, ValueError, TypeError):
        logger.warning("healthz: unreadable index manifest in %s", target)
        return target, None


def _check_index() -> ComponentStatus:
    target, manifest = _read_manifest()
    if target is None:
        return ComponentStatus(ok=False, detail="no index published yet (run manage.py pipeline)")
    if manifest is None:
        return ComponentStatus(ok=False, detail=f"index {target.name} has no readable manifest")
    info = {
        "version": manifest.version or target.name,
        "model": manifest.model or None,
        "vectors": manifest.count,
        "created_at": manifest.created_at or None,
        "age_seconds": _age_seconds(manifest.created_at),
    }
    if info["model"] and info["model"] != settings.MEEPO_CLIP_MODEL:
        return ComponentStatus(
            ok=False,
            detail="index was built for another model; re-run manage.py pipeline",
            info=info,
        )
    return ComponentStatus(ok=True, detail="published", info=info)


def _age_seconds(created_at: str | None) -> float | None:
    if not created_at:
        return None
    try:
        created = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if created.tzinfo is None:
        return None
    return round(time.time() - created.timestamp(), 1)


def _check_model(index: ComponentStatus) -> ComponentStatus:
    name = settings.MEEPO_CLIP_MODEL
    info = {"name": name, "loaded_in_this_worker": _encoder_loaded(), "encoder": _encoder_mode()}
    local = Path(name)
    if local.is_absolute() or name.startswith("."):
        if not (local / "config.json").is_file():
            return ComponentStatus(
                ok=False, detail=f"model directory {name} has no config.json", info=info
            )
        return ComponentStatus(ok=True, detail="local directory", info=info)
    # A hub id: the index manifest naming it proves it was loaded and used to build the index.
    if index.info.get("model") == name:
        return ComponentStatus(ok=True, detail="used by the published index", info=info)
    return ComponentStatus(ok=False, detail="not used by any published index yet", info=info)


def _encoder_mode() -> dict:
    """Precision and text runtime in use (int8 / fp32, onnx / torch, parity), or what the
    settings ask for while this worker has not loaded the model yet."""
    encoder = loaded_encoder()
    if encoder is not None:
        return encoder.describe()
    return {
        "requested": str(settings.MEEPO_CLIP_QUANTIZE),
        "text_runtime_requested": str(settings.MEEPO_CLIP_TEXT_RUNTIME),
        "parity_min": settings.MEEPO_CLIP_PARITY_MIN,
    }


def _encoder_loaded() -> bool:
    cache_info = getattr(get_encoder, "cache_info", None)
    return bool(cache_info and cache_info().currsize)


@never_cache
@require_safe
def healthz(request):
    """The status for everyone; the details (model path, index, database errors) only for this
    machine or a request bearing MEEPO_HEALTH_TOKEN (search.security)."""
    report = check_health()
    detailed = is_local(request) or has_operator_token(request)
    body = report.as_dict() if detailed else {"status": report.status}
    return JsonResponse(body, status=200 if report.is_serving else 503)
