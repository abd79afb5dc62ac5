"""kill -9 between the rename of a new index version and the swap of `index/current`.

The killed build leaves a complete but never-published version directory. It must not count
toward MEEPO_INDEX_KEEP (pushing out a version that was really served) and the next build
removes it. The kill is real: a subprocess publishes three versions, then SIGKILLs itself in the
middle of publishing a fourth.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

from pipeline.indexing import publish
from search.index import published_dir

ROOT = Path(__file__).resolve().parents[2]

_BUILD = """
import os, signal
import django
django.setup()
import numpy as np
from bench.planted_index import publish_arrays
from pipeline.indexing import publish

rng = np.random.default_rng(0)
vectors = rng.normal(size=(8, 16)).astype(np.float32)
vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
ids = np.arange(1, 9)
for _ in range(3):
    publish_arrays(ids, vectors, model="m")
publish.swap_current = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
publish_arrays(ids, vectors, model="m")
"""


def _versions(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink())


def test_version_orphaned_by_kill_9_is_removed_and_not_counted(settings, tmp_path):
    data = tmp_path / "data"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "meepo.settings",
        "MEEPO_SECRET_KEY": "test",
        "MEEPO_ALLOWED_HOSTS": "localhost",
        "MEEPO_DATA_DIR": str(data),
        "MEEPO_LOG_LEVEL": "ERROR",
    }
    done = subprocess.run(
        [sys.executable, "-c", _BUILD],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    settings.MEEPO_DATA_DIR = data
    root = data / "index"
    served = published_dir().name
    *published, orphan = _versions(root)
    assert published[-1] == served  # the killed build never became current
    assert orphan > served

    removed = publish.prune(keep=3)

    assert sorted(removed) == [f".tmp-link-{orphan}", orphan]  # and the link never swapped in
    assert _versions(root) == published  # all three served versions kept
    assert published_dir().name == served


def test_without_current_every_version_is_an_orphan(settings, tmp_path):
    settings.MEEPO_DATA_DIR = tmp_path
    (tmp_path / "index" / "20260101T000000000000Z").mkdir(parents=True)

    assert publish.prune(keep=3) == ["20260101T000000000000Z"]
