"""Files beside an index version (the columnar snapshot, the keyword index) opened once per
version and process: `PerVersion(load, what).get(version_dir)`. Only the newest two versions stay
open (the one served and the one it replaced, still answering in-flight requests). A version whose
file cannot be read answers None, logged once: callers then ask the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
KEEP = 2


class PerVersion(Generic[T]):
    def __init__(self, load: Callable[[Path], T | None], what: str) -> None:
        self._load = load
        self._what = what
        self._loaded: dict[Path, T | None] = {}
        self._lock = threading.Lock()

    def get(self, version_dir: Path) -> T | None:
        path = version_dir if isinstance(version_dir, Path) else Path(version_dir)
        found = self._loaded.get(path, self)  # the steady state: no lock (a dict read is atomic)
        if found is not self:
            return found
        with self._lock:
            if path not in self._loaded:
                try:
                    self._loaded[path] = self._load(path)
                except (OSError, ValueError):
                    logger.exception("could not open the %s of %s; using the database", self._what, path)  # fmt: skip
                    self._loaded[path] = None
                while len(self._loaded) > KEEP:
                    self._loaded.pop(next(iter(self._loaded)))
            return self._loaded[path]

    def forget(self) -> None:
        """Close every loaded version (tests; the next call loads its version afresh)."""
        with self._lock:
            self._loaded.clear()
