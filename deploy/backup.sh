#!/usr/bin/env bash
# Runs in place from the checkout (<app>/deploy/backup.sh), by cron (deploy/crontab) or by hand:
#   MEEPO_DATA_DIR=/srv/meepo/data deploy/backup.sh /srv/meepo/backups
# Makes DEST/meepo-<UTC time>/ holding:
#   db.sqlite3  an online backup (SQLite's backup API: consistent while the site reads and the
#               pipeline writes; embeddings live in it, so restoring never re-runs CLIP), or
#   db.pgdump   with MEEPO_DATABASE_URL=postgres://...: pg_dump's custom format (one snapshot)
#   index/      the published index version and a `current` link to it
#   media/      thumbnails; content-addressed and never modified, so files already in the
#               previous backup are hard-linked, not copied: a daily backup costs only new files
#   MANIFEST    what was backed up, with sizes
# Keeps the newest MEEPO_BACKUP_KEEP (default 7). A backup appears under its final name only once
# complete. Copy DEST off the machine too (rsync, restic, your provider's snapshots).
# Restore: deploy/restore.sh (docs/deploy.md, "Backups and restore").
set -euo pipefail

data=${MEEPO_DATA_DIR:?set MEEPO_DATA_DIR to the data directory}
dest=${1:-${MEEPO_BACKUP_DIR:?usage: backup.sh DEST_DIR (or set MEEPO_BACKUP_DIR)}}
keep=${MEEPO_BACKUP_KEEP:-7}
python=${MEEPO_PYTHON:-python3}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
final="$dest/meepo-$stamp"
work="$dest/.meepo-$stamp.partial"

mkdir -p "$dest"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"
previous=$(find "$dest" -maxdepth 1 -name 'meepo-*' -type d | sort | tail -n 1)

# 1. Database. PostgreSQL (MEEPO_DATABASE_URL=postgres://...): pg_dump's custom format, one
# consistent snapshot while the site reads and the pipeline writes. SQLite: page-by-page online
# copy, then an integrity check on the copy.
db_url=${MEEPO_DATABASE_URL:-}
if [[ "$db_url" == postgres://* || "$db_url" == postgresql://* ]]; then
    db_file="$work/db.pgdump"
    "${MEEPO_PG_DUMP:-pg_dump}" --format=custom --no-owner --file="$db_file" "$db_url"
else
db_file="$work/db.sqlite3"
"$python" - "$data/db.sqlite3" "$work/db.sqlite3" <<'PY'
import sqlite3, sys
source = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=60)
target = sqlite3.connect(sys.argv[2])
with target:
    source.backup(target, pages=4096)
check = target.execute("PRAGMA integrity_check").fetchone()[0]
target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
target.close()
source.close()
if check != "ok":
    sys.exit(f"backup copy failed its integrity check: {check}")
PY
fi

# 2. Index: published versions are immutable, so copying the one `current` points at is safe.
if [ -e "$data/index/current" ]; then
    version_dir=$(readlink -f "$data/index/current")
    mkdir -p "$work/index"
    cp -a "$version_dir" "$work/index/"
    ln -s "$(basename "$version_dir")" "$work/index/current"
fi

# 3. Media: hard-link what the previous backup already has, copy only new files.
if [ -d "$data/media" ]; then
    if [ -n "$previous" ] && [ -d "$previous/media" ]; then
        cp -al "$previous/media" "$work/media"
    fi
    mkdir -p "$work/media"
    cp -a --no-clobber "$data/media/." "$work/media/"
fi

{
    echo "created_at=$stamp"
    echo "data_dir=$data"
    echo "db_bytes=$(stat -c %s "$db_file")"
    echo "index_version=$( [ -L "$work/index/current" ] && readlink "$work/index/current" || echo none)"
    echo "media_files=$(find "$work/media" -type f 2>/dev/null | wc -l)"
} >"$work/MANIFEST"

mv "$work" "$final"
trap - EXIT

# Keep the newest $keep backups.
find "$dest" -maxdepth 1 -name 'meepo-*' -type d | sort | head -n -"$keep" | xargs -r rm -rf
echo "backup written to $final"
