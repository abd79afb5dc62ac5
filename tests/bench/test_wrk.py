"""bench/wrk.py: each wrk thread sends its own slice of the query file (unique requests), and
the server's CPU is read from /proc for the master's children, reaped ones included."""

import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import wrk

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


def test_wrk_sends_every_query_at_most_once_until_it_wraps(tmp_path):
    seen: list[str] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            with lock:
                seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        paths = wrk.write_paths(tmp_path / "q.txt", [f"/search?q=q{i}" for i in range(200_000)])
        result = wrk.run_wrk(
            server.server_address[1], paths, master=os.getpid(), duration=1,
            connections=4, threads=2, script_dir=tmp_path,
        )  # fmt: skip
    finally:
        server.shutdown()
    assert result["errors"] == 0
    assert result["wrapped"] == 0
    assert result["requests"] > 10
    assert len(seen) >= result["requests"]
    assert len(set(seen)) == len(seen)  # no query twice: both threads kept to their slices
    assert {p.partition("=")[2] for p in seen} <= {f"q{i}" for i in range(200_000)}


def test_wrapping_is_reported(tmp_path):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        paths = wrk.write_paths(tmp_path / "q.txt", ["/a", "/b", "/c", "/d"])
        result = wrk.run_wrk(
            server.server_address[1], paths, master=os.getpid(), duration=1,
            connections=2, threads=2, script_dir=tmp_path,
        )  # fmt: skip
    finally:
        server.shutdown()
    assert result["wrapped"] >= result["requests"] - 4 - 2  # in-flight requests at the end


def test_server_cpu_counts_live_and_exited_children():
    before = wrk.server_cpu_s(os.getpid())["workers"]
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    child = subprocess.Popen([sys.executable, "-c", burn])
    child.wait()  # reaped: its CPU moved to our cutime
    after = wrk.server_cpu_s(os.getpid())["workers"]
    assert after - before >= 0.25
    assert os.getpid() not in wrk.children(os.getpid())
