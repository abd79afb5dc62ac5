"""The worker and enqueue units render and pass `systemd-analyze verify`."""

import shutil
import subprocess

import pytest

from tests.deploy.stack import ROOT, render_deploy


def test_worker_and_enqueue_units_verify_cleanly(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    out = render_deploy(tmp_path / "out", MEEPO_APP_DIR=str(ROOT), MEEPO_DATA_DIR=str(tmp_path))
    # An instance of the template, as `systemctl enable meepo-worker@embed` makes.
    shutil.copy(out / "meepo-worker@.service", out / "meepo-worker@embed.service")
    units = ["./meepo-worker@embed.service", "./meepo-enqueue.service", "./meepo-enqueue.timer"]

    result = subprocess.run([analyze, "verify", *units], cwd=out, capture_output=True, text=True, check=False)  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""
    worker = (out / "meepo-worker@embed.service").read_text()
    assert "celery -A meepo worker -Q %i" in worker
    assert "KillMode=mixed" in worker
