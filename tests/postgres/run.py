"""Run pytest against a throwaway PostgreSQL 15 server: `python -m tests.postgres.run [pytest args]`.

Starts tests.postgres.server.TempPostgres (temp dir, unprivileged user, loopback port), exports
MEEPO_DATABASE_URL before pytest (and so Django's settings) starts, runs the suite, stops the
server. pytest-django creates and drops its test database on that server as usual.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.postgres.server import TempPostgres


def main(argv: list[str]) -> int:
    started = time.monotonic()
    with TempPostgres() as pg:
        sys.stderr.write(
            f"PostgreSQL 15 on 127.0.0.1:{pg.port} ({time.monotonic() - started:.1f} s to start)\n"
        )
        env = {**os.environ, "MEEPO_DATABASE_URL": pg.url}
        return subprocess.call([sys.executable, "-m", "pytest", *argv], env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
