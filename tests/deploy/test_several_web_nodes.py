"""Several web nodes, for real: the builder's nginx (deploy/nginx/meepo-builder.conf) serving the
index to `manage.py sync_index`, the load balancer's upstream (deploy/nginx/meepo-cluster.conf)
over two backends, and the sync service and timer (deploy/systemd/meepo-sync-index.*)."""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from bench.planted_index import publish_arrays
from tests.deploy.stack import NGINX, NGINX_MAIN, ROOT, app_env, free_port, http, render_deploy

DEPLOY = ROOT / "deploy"


def _nginx_main(run, site):
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    user = "user root root;" if os.geteuid() == 0 else ""
    main = run / "nginx.conf"
    main.write_text(NGINX_MAIN.format(run=run, user=user, site=site))
    return main


def _nginx_t(run, main):
    return subprocess.run([NGINX, "-t", "-p", str(run), "-c", str(main), "-e", str(run / "error.log")],
                          capture_output=True, text=True, check=False)  # fmt: skip


class _Nginx:
    def __init__(self, run, main):
        self.process = subprocess.Popen([NGINX, "-p", str(run), "-c", str(main), "-e", str(run / "error.log")],
                                        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


def _wait(url, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return http(url, timeout=2)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


@pytest.fixture
def builder_nginx(tmp_path, settings):
    """A published version in the builder's data dir, served by the rendered builder config."""

    def start(web_nodes="127.0.0.1"):
        run = tmp_path / f"nginx-{web_nodes}"
        port = free_port()
        out = render_deploy(run / "rendered", MEEPO_DATA_DIR=str(builder),
                            MEEPO_BUILDER_LISTEN=f"127.0.0.1:{port}", MEEPO_WEB_NODES=web_nodes)  # fmt: skip
        main = _nginx_main(run, out / "meepo-builder.conf")
        server = _Nginx(run, main)
        servers.append(server)
        url = f"http://127.0.0.1:{port}/index/"
        _wait(url + "current/manifest.json")
        return url

    builder = tmp_path / "builder"
    settings.MEEPO_DATA_DIR = builder
    settings.MEEPO_CLIP_MODEL = "m"
    x = np.random.default_rng(0).normal(size=(500, 16)).astype(np.float32)
    version, _, _ = publish_arrays(np.arange(500), x / np.linalg.norm(x, axis=1, keepdims=True), model="m")  # fmt: skip
    servers = []
    yield builder, version, start
    for server in servers:
        server.stop()


def _sync(node, *args):
    env = app_env(node, MEEPO_CLIP_MODEL="m")
    return subprocess.run([sys.executable, "manage.py", "sync_index", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def _tree(directory):
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}  # fmt: skip


def test_builder_and_load_balancer_configs_pass_nginx_t(tmp_path):
    out = render_deploy(tmp_path / "out", MEEPO_BUILDER_LISTEN="127.0.0.1:8081",
                        MEEPO_WEB_NODE_A="127.0.0.1:8001", MEEPO_WEB_NODE_B="unix:/tmp/b.sock")  # fmt: skip
    for site in ("meepo-builder.conf", "meepo-cluster.conf"):
        run = tmp_path / site
        result = _nginx_t(run, _nginx_main(run, out / site))
        assert result.returncode == 0, f"{site}: {result.stderr}"


def test_the_load_balancer_config_is_the_one_vps_config_with_another_upstream():
    """meepo-cluster.conf must not drift from meepo.conf: same limits, locations and headers."""

    def body(name):
        text = (DEPLOY / "nginx" / name).read_text()
        text = re.sub(r"(?ms)^upstream meepo_web \{.*?^\}\n", "", text)
        lines = [line.split("#", 1)[0].rstrip() for line in text.splitlines()]
        return [line for line in lines if line.strip()]

    cluster = body("meepo-cluster.conf")
    extra = [
        line for line in cluster if re.match(r"\s*proxy_(next_upstream|connect_timeout)", line)
    ]
    assert len(extra) == 3
    assert [line for line in cluster if line not in extra] == body("meepo.conf"), (
        "deploy/nginx/meepo-cluster.conf drifted from meepo.conf: apply the same change to both"
    )
    upstream = re.search(r"(?ms)^upstream meepo_web \{.*?^\}", (DEPLOY / "nginx" / "meepo-cluster.conf").read_text()).group(0)  # fmt: skip
    assert "least_conn;" in upstream
    assert not re.search(r"^\s*(ip_hash|hash|sticky)\b", upstream, re.M)  # sticky-free


def test_sync_index_units_verify_cleanly(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    out = render_deploy(tmp_path / "out", MEEPO_APP_DIR=str(ROOT), MEEPO_DATA_DIR=str(tmp_path))

    result = subprocess.run([analyze, "verify", "./meepo-sync-index.service", "./meepo-sync-index.timer"],
                            cwd=out, capture_output=True, text=True, check=False)  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""
    service = (out / "meepo-sync-index.service").read_text()
    assert "manage.py sync_index --quiet" in service
    assert "SuccessExitStatus=75" in service


@pytest.mark.slow
def test_a_web_node_pulls_the_version_through_the_builder_nginx(builder_nginx, tmp_path):
    _, version, start = builder_nginx
    url = start()
    node = tmp_path / "node"

    first = _sync(node, "--from", url)
    again = _sync(node, "--from", url, "--quiet")

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"index {version.name}: synced 4 files")
    synced = node / "index" / version.name
    assert (node / "index" / "current").resolve() == synced
    assert _tree(synced) == _tree(version)
    assert (again.returncode, again.stdout) == (0, "")


@pytest.mark.slow
def test_the_builder_nginx_serves_nothing_else(builder_nginx):
    builder, version, start = builder_nginx
    (builder / "index" / ".tmp-20990101T000000000000Z").mkdir()
    (builder / "index" / ".tmp-20990101T000000000000Z" / "ids.npy").write_bytes(b"partial")
    (builder / "db.sqlite3").write_bytes(b"secret")
    url = start()
    base = url.removesuffix("index/")

    assert http(f"{url}{version.name}/ids.npy")[0] == 200
    assert http(f"{url}.tmp-20990101T000000000000Z/ids.npy")[0] == 404  # being written
    assert http(f"{base}db.sqlite3")[0] == 404  # only index/
    assert http(f"{url}")[0] in (403, 404)  # no listing
    assert http(f"{url}{version.name}/ids.npy", method="PUT", data=b"x")[0] in (403, 405)
    status, headers, _ = http(f"{url}current/manifest.json")
    assert status == 200
    assert headers["Cache-Control"] == "no-cache"


@pytest.mark.slow
def test_a_node_outside_the_allow_list_is_refused(builder_nginx, tmp_path):
    start = builder_nginx[2]
    port_url = start(web_nodes="127.0.0.1")  # the allow-list works: this address gets in
    assert http(port_url + "current/manifest.json")[0] == 200
    url = start(web_nodes="10.0.0.0/24")  # the test's 127.0.0.1 is not a web node

    result = _sync(tmp_path / "node", "--from", url)

    assert result.returncode == 66
    assert "builder answered HTTP 403" in result.stderr
    assert not (tmp_path / "node" / "index" / "current").exists()


class _Named(BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _backend(name):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Named)
    server.name = name
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.slow
def test_the_load_balancer_spreads_requests_and_survives_a_dead_node(tmp_path):
    a, b = _backend("node-a"), _backend("node-b")
    port = free_port()
    run = tmp_path / "lb"
    out = render_deploy(run / "rendered", MEEPO_DATA_DIR=str(tmp_path), MEEPO_LISTEN=f"127.0.0.1:{port}",
                        MEEPO_SERVER_NAME="127.0.0.1",
                        MEEPO_WEB_NODE_A=f"127.0.0.1:{a.server_address[1]}",
                        MEEPO_WEB_NODE_B=f"127.0.0.1:{b.server_address[1]}")  # fmt: skip
    lb = _Nginx(run, _nginx_main(run, out / "meepo-cluster.conf"))
    try:
        _wait(f"http://127.0.0.1:{port}/")
        seen = [http(f"http://127.0.0.1:{port}/")[2] for _ in range(10)]
        assert set(seen) == {b"node-a", b"node-b"}  # no stickiness: both nodes answer one client

        b.shutdown()
        b.server_close()  # node b goes away: nothing listens on its port
        after = [http(f"http://127.0.0.1:{port}/") for _ in range(10)]
        assert [(status, body) for status, _, body in after] == [(200, b"node-a")] * 10
    finally:
        lb.stop()
        a.shutdown()
        a.server_close()


def test_the_load_balancer_passes_the_shoppers_address_to_a_web_node(rf, settings):
    """Behind meepo-cluster.conf gunicorn sees the balancer's private address; axes lockouts and
    rate limits must still count per shopper, from the last X-Forwarded-For entry."""
    from search.security import client_address

    request = rf.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    settings.MEEPO_TRUSTED_PROXIES = []
    assert client_address(request) == "10.0.0.5"  # untrusted peer: its header is ignored
    settings.MEEPO_TRUSTED_PROXIES = ["10.0.0.0/29"]
    assert client_address(request) == "203.0.113.9"  # the address the balancer saw
    direct = rf.get("/", REMOTE_ADDR="10.0.0.77", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert client_address(direct) == "10.0.0.77"  # another host on the network cannot forge it
