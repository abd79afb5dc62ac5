"""Real servers for the deployment tests: nginx (Debian's binary, run as the current user with a
config rendered from deploy/ by deploy/render.sh) in front of gunicorn (deploy/gunicorn.conf.py)
on a unix socket, both on 127.0.0.1 with every path under a temporary directory."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

NGINX_MAIN = """\
daemon off;
worker_processes 1;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
{user}
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    access_log {run}/access.log;
    client_body_temp_path {run}/tmp/body;
    proxy_temp_path {run}/tmp/proxy;
    fastcgi_temp_path {run}/tmp/fastcgi;
    uwsgi_temp_path {run}/tmp/uwsgi;
    scgi_temp_path {run}/tmp/scgi;
    include {site};
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render_deploy(out: Path, **values: str) -> Path:
    """Render deploy/ templates with deploy/render.sh, as docs/deploy.md tells operators to."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **values}
    subprocess.run(["bash", str(ROOT / "deploy" / "render.sh"), str(out)], env=env, check=True,
                   capture_output=True, text=True)  # fmt: skip
    return out


def app_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "meepo.settings",
        "MEEPO_DATA_DIR": str(data_dir),
        "MEEPO_SECRET_KEY": secrets.token_urlsafe(50),
        "MEEPO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "MEEPO_LOG_LEVEL": "WARNING",
        "MEEPO_INDEX_RELOAD_SECONDS": "0.5",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def http(url: str, *, method: str = "GET", data: bytes | None = None,
         headers: dict[str, str] | None = None, timeout: float = 30):  # fmt: skip
    """(status, headers, body) without raising on 4xx/5xx."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]):
    """(body, content type) of a multipart/form-data request, as a browser sends a form."""
    boundary = secrets.token_hex(16)
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for name, (filename, data, content_type) in files.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@dataclass
class Stack:
    data_dir: Path
    env: dict[str, str]
    search_rate: str = "10r/s"
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="meepo-stack-")))
    port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def socket_path(self) -> Path:
        return self.workdir / "gunicorn.sock"  # short: unix socket paths are limited to 108 bytes

    def start(self) -> Stack:
        try:
            self._start_gunicorn()
            self._start_nginx()
            self.wait_until_ready()
        except BaseException:
            self.stop()  # never leave a half-started pair running after a failed start
            raise
        return self

    def _start_gunicorn(self) -> None:
        log = open(self.workdir / "gunicorn.log", "w")  # noqa: SIM115 - closed with the process
        conf = ROOT / "deploy" / "gunicorn.conf.py"
        command = [
            str(VENV_BIN / "gunicorn"),
            "-c",
            str(conf),
            "--bind",
            f"unix:{self.socket_path}",
        ]
        self.processes.append(subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))  # fmt: skip

    def _start_nginx(self) -> None:
        site_dir = render_deploy(
            self.workdir / "rendered",
            MEEPO_APP_DIR=str(ROOT),
            MEEPO_DATA_DIR=str(self.data_dir),
            MEEPO_SOCKET=str(self.socket_path),
            MEEPO_LISTEN=f"127.0.0.1:{self.port}",
            MEEPO_SERVER_NAME="127.0.0.1 localhost",
            MEEPO_SEARCH_RATE=self.search_rate,
            MEEPO_USER=os.environ.get("USER", "meepo"),
        )
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.workdir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        # As root, nginx's workers would drop to "nobody", who cannot read the temp directories.
        user = "user root root;" if os.geteuid() == 0 else ""
        main = self.workdir / "nginx.conf"
        main.write_text(
            NGINX_MAIN.format(run=self.workdir, user=user, site=site_dir / "meepo.conf")
        )
        subprocess.run([NGINX, "-t", "-p", str(self.workdir), "-c", str(main), "-e", str(self.workdir / "error.log")], check=True, capture_output=True)  # fmt: skip
        log = open(self.workdir / "nginx.out", "w")  # noqa: SIM115
        self.processes.append(subprocess.Popen([NGINX, "-p", str(self.workdir), "-c", str(main), "-e", str(self.workdir / "error.log")], stdout=log, stderr=subprocess.STDOUT, start_new_session=True))  # fmt: skip

    def wait_until_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"server exited early:\n{self.logs()}")
            try:
                status, _, _ = http(f"{self.base_url}/healthz", timeout=5)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"stack not ready after {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        parts = []
        for name in ("gunicorn.log", "error.log", "nginx.out"):
            path = self.workdir / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text()[-4000:]}")
        return "\n".join(parts)

    def gunicorn_pids(self) -> list[int]:
        """The gunicorn master and its workers (for memory measurements)."""
        master = self.processes[0].pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return [master, *map(int, children)]

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)
