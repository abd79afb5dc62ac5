"""The files in deploy/ render, say where they go, and follow the operating rules."""

import re
import shutil
import subprocess

import pytest

from tests.deploy.stack import NGINX, ROOT, render_deploy

DEPLOY = ROOT / "deploy"


def test_every_deploy_file_opens_with_where_it_is_installed():
    for path in sorted(
        p for p in DEPLOY.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ):
        head = path.read_text().splitlines()[:3]
        text = "\n".join(head)
        assert re.search(r"install|runs in place|not copied|not read by the app|renders", text, re.I), path  # fmt: skip


def test_render_fills_every_placeholder_and_keeps_nginx_and_systemd_variables(tmp_path):
    out = render_deploy(tmp_path / "out", MEEPO_SERVER_NAME="shop-search.example.org")

    site = (out / "meepo.conf").read_text()
    assert "server_name shop-search.example.org;" in site
    assert "${MEEPO_" not in "".join(p.read_text() for p in out.iterdir())
    assert "$binary_remote_addr" in site  # nginx's own variables survive
    assert "kill -s HUP $MAINPID" in (out / "meepo-web.service").read_text()
    assert "alias /srv/meepo/data/staticfiles/;" in site


def test_rendered_nginx_site_passes_nginx_t(tmp_path):
    out = render_deploy(tmp_path / "out", MEEPO_LISTEN="127.0.0.1:8080")
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; events {{}}\n"
        f"http {{ include /etc/nginx/mime.types; include {out}/meepo.conf; }}\n"
    )

    result = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "error.log")],
                            capture_output=True, text=True, check=False)  # fmt: skip

    assert result.returncode == 0, result.stderr


def test_every_cron_job_is_locked_commented_and_loads_the_environment():
    lines = (DEPLOY / "crontab").read_text().splitlines()
    jobs = [(i, line) for i, line in enumerate(lines) if re.match(r"^[0-9*]", line)]

    assert len(jobs) >= 3
    for i, line in jobs:
        fields = line.split()
        assert fields[5] == "${MEEPO_USER}", line
        assert "flock -n" in line, line
        assert ". /etc/meepo/env" in line, line
        above = []
        while lines[i - 1 - len(above)].startswith("#"):
            above.append(lines[i - 1 - len(above)])
        assert any(c.startswith("# Every") for c in above), f"no plain-words schedule: {line}"
    pipeline = next(line for _, line in jobs if "manage.py pipeline" in line)
    assert "sleep $((RANDOM \\% 1800))" in pipeline


def test_gunicorn_config_is_sized_for_two_cpus():
    config = {}
    exec((DEPLOY / "gunicorn.conf.py").read_text(), config)

    assert config["workers"] == 2
    assert config["preload_app"] is True
    # A worker's start costs seconds of CPU: recycled rarely, the two never together.
    assert config["max_requests"] >= 50_000
    assert config["max_requests_jitter"] >= config["max_requests"] // 4
    assert config["timeout"] <= 60


@pytest.mark.parametrize(("setting", "frozen"), [("true", True), ("false", False)])
def test_gunicorn_master_freezes_its_objects_before_each_fork(monkeypatch, setting, frozen):
    """Frozen, the preloaded objects are out of every worker's garbage collections: a full one
    no longer walks (and un-shares) the model's and Django's objects. MEEPO_GC_FREEZE=false
    turns it off."""
    import gc

    monkeypatch.setenv("MEEPO_GC_FREEZE", setting)
    config = {}
    exec((DEPLOY / "gunicorn.conf.py").read_text(), config)
    assert gc.get_freeze_count() == 0
    try:
        config["pre_fork"](None, None)
        assert (gc.get_freeze_count() > 1000) is frozen
    finally:
        gc.unfreeze()


def test_rendered_systemd_units_verify_cleanly(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    out = render_deploy(tmp_path / "out", MEEPO_APP_DIR=str(ROOT), MEEPO_DATA_DIR=str(tmp_path))
    units = [f"./{name}" for name in ("meepo-web.socket", "meepo-web.service", "meepo-pipeline.service", "meepo-pipeline.timer")]  # fmt: skip

    result = subprocess.run([analyze, "verify", *units], cwd=out, capture_output=True, text=True, check=False)  # fmt: skip

    assert result.returncode == 0
    assert result.stdout + result.stderr == ""
