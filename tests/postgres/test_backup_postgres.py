"""deploy/backup.sh and deploy/restore.sh with MEEPO_DATABASE_URL on a real PostgreSQL 15."""

import sys

import pytest

from tests.deploy.stack import ROOT, app_env, manage
from tests.postgres.server import TempPostgres

pytestmark = pytest.mark.slow

ADD = "from tests.deploy.catalogue import add_products; add_products(40, with_thumbnails=3)"


def _script(name, *args, env):
    import subprocess

    return subprocess.run(["bash", str(ROOT / "deploy" / name), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def test_backup_and_restore_round_trip_through_pg_dump(tmp_path, tiny_clip_dir):
    with TempPostgres() as pg:
        data = tmp_path / "data"
        env = app_env(data, MEEPO_DATABASE_URL=pg.url, MEEPO_PYTHON=sys.executable,
                      MEEPO_CLIP_MODEL=str(tiny_clip_dir))  # fmt: skip
        manage(env, "migrate", "--noinput")
        manage(env, "shell", "-c", ADD)

        def count():
            return int(pg.psql("meepo", "SELECT count(*) FROM catalog_product").strip())

        assert count() == 40
        backup = _script("backup.sh", tmp_path / "backups", env=env)
        assert backup.returncode == 0, backup.stderr
        made = next((tmp_path / "backups").glob("meepo-*"))
        assert (made / "db.pgdump").stat().st_size > 0
        assert not (made / "db.sqlite3").exists()
        assert "db_bytes=" in (made / "MANIFEST").read_text()

        pg.psql("meepo", "TRUNCATE catalog_product CASCADE")  # a bad day
        assert count() == 0
        restore = _script("restore.sh", made, env=env)
        assert restore.returncode == 0, restore.stderr
        assert count() == 40
        # The generated keyword column and its GIN index come back with the tables.
        word = pg.psql("meepo", "SELECT split_part(title, ' ', 1) FROM catalog_product LIMIT 1").strip()  # fmt: skip
        hits = pg.psql("meepo", f"SELECT count(*) FROM catalog_product WHERE search_vector @@ plainto_tsquery('meepo', '{word}')")  # fmt: skip
        assert int(hits) >= 1
        assert "catalog_product_search_gin" in pg.psql("meepo", "SELECT indexname FROM pg_indexes")
