"""deploy/backup.sh and deploy/restore.sh round trip, taken while the pipeline writes."""

import sqlite3
import subprocess
import sys

import pytest

from tests.deploy.stack import ROOT, app_env, manage

pytestmark = pytest.mark.slow

ADD = "from tests.deploy.catalogue import add_products; add_products({n}, with_thumbnails={t})"


def _script(name, *args, env):
    return subprocess.run(["bash", str(ROOT / "deploy" / name), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def _count(db, table="catalog_product"):
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, tiny_clip_dir):
    data = tmp_path_factory.mktemp("backup") / "data"
    env = app_env(data, MEEPO_CLIP_MODEL=str(tiny_clip_dir), MEEPO_PYTHON=sys.executable)
    manage(env, "migrate", "--noinput")
    manage(env, "shell", "-c", ADD.format(n=300, t=10))
    manage(env, "embed")
    manage(env, "build_index")
    return data, env


def test_backup_taken_during_writes_restores_a_working_data_dir(data_dir, tmp_path):
    _, env = data_dir
    backups = tmp_path / "backups"
    writer = subprocess.Popen([sys.executable, "manage.py", "shell", "-c", ADD.format(n=3000, t=0)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip

    backup = _script("backup.sh", backups, env=env)
    writer.wait(timeout=300)

    assert backup.returncode == 0, backup.stderr
    assert writer.returncode == 0, writer.stderr.read()
    (made,) = backups.glob("meepo-*")
    assert 300 <= _count(made / "db.sqlite3") <= 3300
    assert (made / "index" / "current" / "manifest.json").is_file()
    assert len(list((made / "media").rglob("*.jpg"))) == 10
    assert "media_files=10" in (made / "MANIFEST").read_text()

    restored = tmp_path / "restored"
    restore = _script("restore.sh", made, env={**env, "MEEPO_DATA_DIR": str(restored)})

    assert restore.returncode == 0, restore.stderr
    assert _count(restored / "db.sqlite3") == _count(made / "db.sqlite3")
    assert (restored / "index" / "current" / "manifest.json").is_file()
    status = manage({**env, "MEEPO_DATA_DIR": str(restored)}, "index_status")
    assert status.returncode == 0


def test_second_backup_hard_links_unchanged_media_and_keeps_the_newest(data_dir, tmp_path):
    _, env = data_dir
    backups = tmp_path / "backups"
    env = {**env, "MEEPO_BACKUP_KEEP": "2"}
    for _ in range(3):
        assert _script("backup.sh", backups, env=env).returncode == 0
        # backup names have one-second resolution
        subprocess.run(["sleep", "1.1"], check=True)

    kept = sorted(backups.glob("meepo-*"))
    assert len(kept) == 2
    first, second = (sorted((b / "media").rglob("*.jpg"))[0] for b in kept)
    assert first.stat().st_ino == second.stat().st_ino


def test_restore_refuses_a_directory_without_a_database(tmp_path, data_dir):
    _, env = data_dir

    result = _script("restore.sh", tmp_path, env=env)

    assert result.returncode == 2
    assert "has no db.sqlite3" in result.stderr
