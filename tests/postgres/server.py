"""A throwaway PostgreSQL 15 server for the tests: Debian's binaries, a temporary data directory,
an unprivileged user, a free port on 127.0.0.1. No mocks: the suite talks to a real server.

    with TempPostgres() as pg:
        pg.url  # postgres://meepo:...@127.0.0.1:PORT/meepo

As root the server runs as `nobody` (PostgreSQL refuses to run as root); otherwise as the caller.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path(os.environ.get("MEEPO_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "meepo"
DATABASE = "meepo"


def available() -> bool:
    return (PG_BIN / "initdb").is_file() and (PG_BIN / "pg_ctl").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempPostgres:
    def __init__(self, *, port: int | None = None):
        self.port = port or _free_port()
        self.password = secrets.token_hex(12)
        self.root = Path(tempfile.mkdtemp(prefix="meepo-pg-"))
        self.data = self.root / "data"
        self.as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        return self.url_for(DATABASE)

    def url_for(self, database: str) -> str:
        return f"postgres://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "nobody", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)

    def start(self) -> TempPostgres:
        if not available():
            raise RuntimeError(
                f"PostgreSQL binaries not found in {PG_BIN} (apt install postgresql)"
            )
        pwfile = self.root / "pw"
        pwfile.write_text(self.password)
        if self.as_root:
            shutil.chown(self.root, "nobody")
            shutil.chown(pwfile, "nobody")
        os.chmod(pwfile, 0o600)
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
            "-A", "scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        # Tests only: durability off (a crash loses a throwaway cluster), small footprint.
        settings = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=100 -c shared_buffers=64MB"
        )
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", settings,
            "-l", str(self.root / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        self.psql("postgres", f"CREATE DATABASE {DATABASE}")
        return self

    def psql(self, database: str, sql: str) -> str:
        env = {**os.environ, "PGPASSWORD": self.password}
        out = subprocess.run(
            [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER,
             "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
            check=True, capture_output=True, text=True, env=env,
        )  # fmt: skip
        return out.stdout

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TempPostgres:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
