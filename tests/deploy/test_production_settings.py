"""Production mode boots only when configured, and Django's deployment checklist is clean."""

import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _manage(args, env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _production_env(tmp_path):
    # What docs/deploy.md tells the operator to put in /etc/meepo/env.
    return {
        "MEEPO_DATA_DIR": str(tmp_path / "data"),
        "MEEPO_SECRET_KEY": secrets.token_urlsafe(50),
        "MEEPO_ALLOWED_HOSTS": "search.example.com",
        "MEEPO_CSRF_TRUSTED_ORIGINS": "https://search.example.com",
        "MEEPO_HTTPS": "true",
        "MEEPO_SSL_REDIRECT": "true",
        "MEEPO_HSTS_SECONDS": "31536000",
    }


def test_check_deploy_is_clean_in_production_mode(tmp_path):
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], _production_env(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_allowed_hosts(tmp_path):
    env = _production_env(tmp_path)
    del env["MEEPO_ALLOWED_HOSTS"]

    result = _manage(["check"], env)

    assert result.returncode != 0
    assert "MEEPO_ALLOWED_HOSTS is not set" in result.stderr


def test_production_refuses_to_start_without_secret_key(tmp_path):
    env = _production_env(tmp_path)
    del env["MEEPO_SECRET_KEY"]

    result = _manage(["check"], env)

    assert result.returncode != 0
    assert "MEEPO_SECRET_KEY is not set" in result.stderr
