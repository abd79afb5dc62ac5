"""gunicorn takes its listening socket from systemd (meepo-web.socket), as deploy/ installs it."""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.deploy.stack import ROOT, VENV_BIN

pytestmark = pytest.mark.slow


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def test_gunicorn_serves_on_the_socket_systemd_passes_in(stack_data):
    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        pytest.skip("systemd-socket-activate is not installed")
    _, env = stack_data
    sock = Path(tempfile.mkdtemp(prefix="meepo-sd-")) / "gunicorn.sock"
    # The same command line as meepo-web.service: no --bind, the socket comes from LISTEN_FDS.
    # systemd-socket-activate passes on only the variables named with -E (systemd: EnvironmentFile).
    passed = [f"-E{name}={value}" for name, value in env.items()]
    command = [activate, "-l", str(sock), *passed, str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py")]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline, status = time.monotonic() + 120, None
        while time.monotonic() < deadline and status is None:
            try:
                conn = UnixHTTPConnection(str(sock))
                conn.request("GET", "/healthz", headers={"Host": "localhost"})
                status = conn.getresponse().status
            except OSError:
                time.sleep(0.3)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode()
        shutil.rmtree(sock.parent, ignore_errors=True)
    assert status == 200, output[-3000:]
    assert "unix:/run/meepo" not in output  # the config's default bind was not used
