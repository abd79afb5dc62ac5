#!/usr/bin/env bash
# Renders the deploy/ templates into OUT_DIR with the values from deploy/render.env, each of
# which the environment may override. Only ${MEEPO_*} placeholders are replaced, so nginx's own
# $variables and systemd's $MAINPID pass through untouched. Needs envsubst (Debian: gettext-base).
# Usage: deploy/render.sh OUT_DIR      (then copy the files where their first line says)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: deploy/render.sh OUT_DIR}
names=$(sed -n 's/^\(MEEPO_[A-Z_]*\)=.*/\1/p' "$here/render.env")
for name in $names; do
    # The environment wins over render.env's default.
    if [ -z "${!name:-}" ]; then
        export "$(grep -m1 "^$name=" "$here/render.env")"
    else
        export "${name?}"
    fi
done
shell_format=$(for name in $names; do printf '${%s} ' "$name"; done)
mkdir -p "$out"
for template in nginx/meepo.conf systemd/meepo-web.socket \
    systemd/meepo-web.service systemd/meepo-pipeline.service systemd/meepo-pipeline.timer \
    crontab logrotate \
    nginx/meepo-builder.conf nginx/meepo-cluster.conf \
    systemd/meepo-sync-index.service systemd/meepo-sync-index.timer \
    systemd/meepo-worker@.service systemd/meepo-enqueue.service systemd/meepo-enqueue.timer; do
    envsubst "$shell_format" <"$here/$template" >"$out/$(basename "$template")"
done
if grep -l '\${MEEPO_[A-Z]' "$out"/* >&2; then
    echo "render.sh: unreplaced placeholders in the files above" >&2
    exit 1
fi
echo "rendered into $out"
