"""Settings are documented and safe by default."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _names(pattern: str, text: str) -> set[str]:
    return set(re.findall(pattern, text, flags=re.MULTILINE))


def test_every_meepo_variable_read_by_settings_is_in_env_example():
    read = _names(r'"(MEEPO_[A-Z0-9_]+)"', (ROOT / "meepo" / "settings.py").read_text())
    documented = _names(r"^#?\s*(MEEPO_[A-Z0-9_]+)=", (ROOT / ".env.example").read_text())
    assert read, "settings.py reads no MEEPO_* variable?"
    assert read - documented == set(), f"missing from .env.example: {sorted(read - documented)}"


def _boot(env: dict[str, str]) -> subprocess.CompletedProcess:
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "meepo.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_defaults_refuse_to_start_without_secret_key(tmp_path):
    result = _boot({"MEEPO_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "MEEPO_SECRET_KEY is not set" in result.stderr


def test_production_defaults_are_debug_off(tmp_path):
    result = _boot(
        {
            "MEEPO_DATA_DIR": str(tmp_path),
            "MEEPO_SECRET_KEY": "x" * 50,
            "MEEPO_ALLOWED_HOSTS": "search.example.com",
        }
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
