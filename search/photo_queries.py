"""A photo search's query vector, kept for a short time under an opaque id, so its results have a
URL (`/search/image?photo=<id>`): shareable for a while, pageable ("more"), filterable, and Back
and refresh do not re-upload anything.

Only the CLIP vector (2 KB of floats) is kept, never the photo: a vector cannot be turned back
into the picture. Files live in MEEPO_DATA_DIR/photo-queries/<id>.npy, shared by every web
worker; each is deleted `TTL_SECONDS` after it was written (old ones are swept whenever a new one
is written). An id is 128 random bits (`secrets.token_urlsafe(16)`): unguessable, and a
malformed one is never used as a path.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

TTL_SECONDS = 3600
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22}$")


def _root() -> Path:
    return Path(settings.MEEPO_DATA_DIR) / "photo-queries"


def remember(vector: NDArray[np.float32]) -> str:
    """Keep a query vector for TTL_SECONDS; returns its id."""
    root = _root()
    root.mkdir(parents=True, exist_ok=True)
    _sweep(root)
    token = secrets.token_urlsafe(16)
    tmp = root / f".{token}.tmp"
    with tmp.open("wb") as out:
        np.save(out, np.asarray(vector, dtype=np.float32))
    tmp.replace(root / f"{token}.npy")
    return token


def recall(token: str) -> NDArray[np.float32] | None:
    """The vector kept under `token`, or None when it is unknown, malformed or expired."""
    if not isinstance(token, str) or not _TOKEN.match(token):
        return None
    path = _root() / f"{token}.npy"
    try:
        if time.time() - path.stat().st_mtime > TTL_SECONDS:
            return None
        return np.load(path, allow_pickle=False).astype(np.float32)
    except (OSError, ValueError):
        return None


def _sweep(root: Path) -> None:
    cutoff = time.time() - TTL_SECONDS
    for path in root.glob("*.npy"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:  # another worker swept it first
            continue
