"""Run pytest against a throwaway PostgreSQL 15 server: `python -m tests.postgres.run [pytest args]`.

Starts tests.postgres.server.TempPostgres (temp dir, unprivileged user, loopback port), exports
MEEPO_DATABASE_URL before pytest (and so Django's settings) starts, runs the suite, stops the
server. pytest-django creates and drops its test database on that server as usual.

`--both` is what `make test` runs: the suite on SQLite and on PostgreSQL at once, two pytest
processes with their own data and temp directories, each output line prefixed with its backend;
it fails when either fails. Tests whose subject is not the outer database run once, in one of
the two (ONCE_ON_SQLITE, ONCE_ON_POSTGRES), which also evens out the two processes' lengths.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.postgres.server import TempPostgres

# Run once, not once per backend (numbers in docs/deploy.md). On the SQLite side: the browser
# (Chromium and Lighthouse against the live server: what they add is the page, while the queries
# behind it run on both backends through Django's test client) and the cluster test (it starts
# its own PostgreSQL and Redis).
ONCE_ON_SQLITE = ("tests/browser", "tests/cluster")
# On the PostgreSQL side, only to even out the two processes: servers started with a database of
# their own (gunicorn, nginx, systemd's socket, backups, `make run`: each on a fresh SQLite data
# dir; the pg_dump backup on its own PostgreSQL), never the outer test database.
ONCE_ON_POSTGRES = (
    "tests/deploy/test_backup.py",
    "tests/deploy/test_deploy_files.py",
    "tests/deploy/test_make_run.py",
    "tests/deploy/test_nginx_stack.py",
    "tests/deploy/test_several_web_nodes.py",
    "tests/deploy/test_socket_activation.py",
    "tests/deploy/test_zero_downtime.py",
    "tests/hostile/test_shopper_nginx.py",
    "tests/postgres/test_backup_postgres.py",
)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--both"]:
        return both(argv[1:])
    started = time.monotonic()
    with TempPostgres() as pg:
        sys.stderr.write(
            f"PostgreSQL 15 on 127.0.0.1:{pg.port} ({time.monotonic() - started:.1f} s to start)\n"
        )
        env = {**os.environ, "MEEPO_DATABASE_URL": pg.url}
        return subprocess.call([sys.executable, "-m", "pytest", *argv], env=env)


def both(argv: list[str]) -> int:
    """The suite on SQLite and on PostgreSQL at once; 0 only when both pass."""
    data = Path(os.environ.get("MEEPO_DATA_DIR", "var/test"))
    with TempPostgres() as pg, tempfile.TemporaryDirectory(prefix="meepo-tests-") as tmp:
        runs = {
            "sqlite": ({"MEEPO_DATA_DIR": str(data)}, ONCE_ON_POSTGRES),
            "postgres": (
                {"MEEPO_DATA_DIR": f"{data}-postgres", "MEEPO_DATABASE_URL": pg.url},
                ONCE_ON_SQLITE,
            ),
        }
        started, codes, threads = time.monotonic(), {}, []
        for name, (env, elsewhere) in runs.items():
            args = [f"--basetemp={tmp}/{name}", *(f"--ignore={p}" for p in elsewhere), *argv]
            proc = subprocess.Popen(
                [sys.executable, "-m", "pytest", *args],
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            thread = threading.Thread(target=_relay, args=(name, proc, started, codes))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
    failed = [name for name, code in codes.items() if code != 0]
    _say(f"FAILED: {', '.join(failed)}" if failed else "both passed")
    return next((code if code > 0 else 1 for code in codes.values() if code), 0)


def _relay(name: str, proc: subprocess.Popen, started: float, codes: dict[str, int]) -> None:
    """Copy `proc`'s output line by line, prefixed with `name`; record its exit code."""
    for line in proc.stdout:
        _say(f"[{name:8}] {line.rstrip(chr(10))}")
    codes[name] = proc.wait()
    elapsed = time.monotonic() - started
    _say(f"[{name:8}] exit {codes[name]} after {elapsed:.0f} s")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
