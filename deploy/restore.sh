#!/usr/bin/env bash
# Runs in place from the checkout (<app>/deploy/restore.sh), by hand, as the meepo user:
#   systemctl stop meepo-web meepo-pipeline.timer        # (as root) nothing may write meanwhile
#   MEEPO_DATA_DIR=/srv/meepo/data deploy/restore.sh /srv/meepo/backups/meepo-20260101T051500Z
#   systemctl start meepo-web meepo-pipeline.timer
# Puts a backup made by deploy/backup.sh back into MEEPO_DATA_DIR. Whatever it replaces is moved
# aside to MEEPO_DATA_DIR/pre-restore-<UTC time>/ rather than deleted, so a wrong restore can be
# undone. Then run `manage.py migrate` (a backup from older code) and check /healthz.
set -euo pipefail

backup=${1:?usage: restore.sh BACKUP_DIR (a meepo-<time> directory made by backup.sh)}
data=${MEEPO_DATA_DIR:?set MEEPO_DATA_DIR to the data directory}
python=${MEEPO_PYTHON:-python3}
db_url=${MEEPO_DATABASE_URL:-}
if [[ "$db_url" == postgres://* || "$db_url" == postgresql://* ]]; then
    # PostgreSQL: the dump replaces the database's tables; media and index as below.
    [ -f "$backup/db.pgdump" ] || { echo "restore.sh: $backup has no db.pgdump" >&2; exit 2; }
    "${MEEPO_PG_RESTORE:-pg_restore}" --clean --if-exists --no-owner --single-transaction \
        --dbname="$db_url" "$backup/db.pgdump"
    aside="$data/pre-restore-$(date -u +%Y%m%dT%H%M%SZ)"
    mkdir -p "$data" "$aside"
    for name in index media; do
        if [ -e "$data/$name" ] || [ -L "$data/$name" ]; then mv "$data/$name" "$aside/"; fi
    done
    [ -d "$backup/index" ] && cp -a "$backup/index" "$data/index"
    [ -d "$backup/media" ] && cp -a "$backup/media" "$data/media"
    echo "restored $backup into $db_url and $data (previous files in $aside)"
    exit 0
fi
[ -f "$backup/db.sqlite3" ] || { echo "restore.sh: $backup has no db.sqlite3" >&2; exit 2; }

"$python" - "$backup/db.sqlite3" <<'PY'
import sqlite3, sys
check = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True).execute("PRAGMA integrity_check").fetchone()[0]
if check != "ok":
    sys.exit(f"restore.sh: the backup database fails its integrity check: {check}")
PY

aside="$data/pre-restore-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$data" "$aside"
for name in db.sqlite3 db.sqlite3-wal db.sqlite3-shm index media; do
    if [ -e "$data/$name" ] || [ -L "$data/$name" ]; then
        mv "$data/$name" "$aside/"
    fi
done

cp -a "$backup/db.sqlite3" "$data/db.sqlite3"
[ -d "$backup/index" ] && cp -a "$backup/index" "$data/index"
[ -d "$backup/media" ] && cp -a "$backup/media" "$data/media"
echo "restored $backup into $data (previous files in $aside)"
