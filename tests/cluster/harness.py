"""The whole distributed Meepo on 127.0.0.1: a throwaway PostgreSQL 15, Redis, Celery crawl/embed
workers, a builder (a Celery worker on the `build` queue whose nginx serves its index/), web
nodes (gunicorn, each with its own MEEPO_DATA_DIR) that pull the builder's index with
`manage.py sync_index`, and nginx with an upstream over the web nodes.

Every server is started in its own process group (`start_new_session`), so `Cluster.stop()` (and
`Service.kill()`, the "machine dies" of the tests) takes the whole group down with SIGKILL,
whatever state the test left it in. Thumbnails live in one shared directory (MEEPO_MEDIA_ROOT,
what an NFS mount is in production); every other path is per process under one temporary
directory. Used by tests/cluster/ and bench/cluster.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.deploy import stack
from tests.deploy.stack import NGINX, ROOT, VENV_BIN, app_env, free_port, http
from tests.postgres.server import TempPostgres

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
# The deploy stack's nginx main config, with an access log that names the upstream node each
# request went to (the test asserts both nodes served) and several site files.
NGINX_MAIN = stack.NGINX_MAIN.replace(
    "    access_log {run}/access.log;\n",
    "    log_format cluster 'upstream=$upstream_addr status=$status $request';\n"
    "    access_log {run}/access.log cluster;\n",
).replace("    include {site};\n", "    {sites}\n")
assert "{sites}" in NGINX_MAIN, "stack.NGINX_MAIN changed shape"
assert "log_format cluster" in NGINX_MAIN, "stack.NGINX_MAIN changed shape"


@dataclass
class Service:
    """One server process (and its children) in its own process group, logging to a file."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None

    def start(self) -> Service:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a Celery worker's pool children die with it)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        if sig == signal.SIGKILL:
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if not self.alive:
            self.kill()  # the group may outlive its leader (pool children)
            return
        self.kill(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self.kill()

    def tail(self, chars: int = 3000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log})\n{text[-chars:]}"


def wait_for(what: str, predicate: Callable[[], object], timeout: float, every: float = 0.25):
    """predicate()'s first truthy value, or AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@dataclass
class WebNode:
    name: str
    data: Path
    port: int
    service: Service

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    """Start with `Cluster(...).start()`; always `stop()` (the fixture does, also on failure)."""

    model_dir: Path
    workers: int = 2
    web_nodes: int = 2
    builder: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="meepo-cluster-")))
    services: list[Service] = field(default_factory=list)
    nodes: list[WebNode] = field(default_factory=list)
    worker_services: dict[str, Service] = field(default_factory=dict)
    postgres: TempPostgres | None = None
    database: str = ""  # another database on the same server (bench.cluster: one per run)

    # --- start ----------------------------------------------------------------------------
    def start(self) -> Cluster:
        try:
            self.postgres = TempPostgres().start()
            self.redis_port = free_port()
            self.media = self._dir("shared-media")
            self.builder_data = self._dir("builder")
            redis_cmd = [REDIS, "--port", str(self.redis_port), "--bind", "127.0.0.1",
                         "--dir", str(self._dir("redis")), "--save", "", "--appendonly", "no"]  # fmt: skip
            self._spawn("redis", redis_cmd, {"PATH": "/usr/bin:/bin"})
            node_dirs = [self._dir(f"web{i}") for i in range(1, self.web_nodes + 1)]
            self.manage_all(
                [(self.builder_data, ("migrate", "--noinput"))]
                + [(data, ("collectstatic", "--noinput")) for data in node_dirs],
                timeout=600,
            )
            self._wait_redis()
            for i in range(1, self.workers + 1):
                self.start_worker(f"w{i}")
            if self.builder:
                self.start_worker("builder", "build", data=self.builder_data)
            self.builder_port = free_port()
            self.nginx_port = free_port()
            for i in range(1, self.web_nodes + 1):
                self._start_web_node(f"web{i}")
            if self.nodes:
                self._start_nginx()
            for node in self.nodes:
                wait_for(f"{node.name} /healthz", lambda n=node: self._healthy(n.url), 180)
            if self.nodes:
                wait_for("nginx", lambda: self._healthy(self.url), 30)
        except BaseException:
            self.stop()
            raise
        return self

    def env(self, data: Path, **extra: str) -> dict[str, str]:
        """The settings every machine of the cluster shares, with this machine's data dir."""
        env = app_env(
            data,
            MEEPO_DATABASE_URL=self.postgres.url_for(self.database or "meepo"),
            MEEPO_BROKER_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            MEEPO_MEDIA_ROOT=str(self.media),
            MEEPO_CLIP_MODEL=str(self.model_dir),
            MEEPO_CLIP_QUANTIZE="off",
            MEEPO_CLIP_TEXT_RUNTIME="torch",
            MEEPO_RELEVANCE_FLOOR="false",
            MEEPO_ALLOWED_LOOPBACK="127.0.0.1:*",
            MEEPO_CRAWL_DELAY="0",
            MEEPO_API_DELAY="0",
            MEEPO_SECRET_KEY="cluster-test-secret-key-shared-by-every-node-0123456789",
            MEEPO_HEALTH_TOKEN="cluster-health",
            OMP_NUM_THREADS="1",
        )
        env.update(self.extra_env)
        env.update(extra)
        return env

    def manage(self, data: Path, *args: str, timeout: float = 300, check: bool = True, **extra):
        return self.manage_all([(data, args)], timeout=timeout, check=check, **extra)[0]

    def manage_all(self, calls, *, timeout: float = 300, check: bool = True, **extra):
        """Run manage.py (data dir, args) calls at the same time, as separate machines would;
        their CompletedProcess results in order."""
        procs = [
            (
                args,
                subprocess.Popen(
                    [sys.executable, "manage.py", *args],
                    cwd=ROOT,
                    env=self.env(data, **extra),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
            for data, args in calls
        ]
        results = []
        for args, proc in procs:
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
            result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
            if check:
                assert result.returncode == 0, (
                    f"manage.py {' '.join(args)} exited {result.returncode}:\n"
                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
                )
            results.append(result)
        return results

    def start_worker(self, name: str, queues: str = "crawl,embed", *, data: Path | None = None,
                     args: tuple[str, ...] = ("--concurrency", "1"), **env: str) -> Service:  # fmt: skip
        """A Celery worker (its own data dir): by default prefork with one child, so a task runs
        in a child process as in production; -O fair hands a task only to a free child."""
        data = data or self._dir(name)
        command = [str(VENV_BIN / "celery"), "-A", "meepo", "worker", "-Q", queues, "-n", f"{name}@cluster",
                   *args, "-O", "fair", "--without-gossip", "--without-mingle", "--loglevel", "INFO"]  # fmt: skip
        service = self._spawn(name, command, self.env(data, **env))
        self.worker_services[name] = service
        return service

    def wait_ready(self, *names: str, timeout: float = 120) -> None:
        for name in names:
            service = self.worker_services[name]
            wait_for(f"worker {name}", lambda s=service: f"{s.name}@cluster ready." in s.tail(20_000), timeout)  # fmt: skip

    def _start_web_node(self, name: str) -> None:
        data = self._dir(name)  # collectstatic ran beside migrate, in start()
        port = free_port()
        command = [str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                   "--bind", f"127.0.0.1:{port}"]  # fmt: skip
        env = self.env(data, WEB_CONCURRENCY="1", GUNICORN_THREADS="4",
                       MEEPO_INDEX_RELOAD_SECONDS="0.5")  # fmt: skip
        self.nodes.append(WebNode(name, data, port, self._spawn(name, command, env)))

    def _start_nginx(self) -> None:
        """nginx with the builder's index site and the upstream over the web nodes, rendered
        from deploy/nginx/ like the one-VPS site; the access log names the node that answered."""
        from tests.cluster.nginx import render_sites

        work = self._dir("nginx")
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (work / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        sites = render_sites(self, work / "rendered")
        user = "user root root;" if os.geteuid() == 0 else ""
        main = work / "nginx.conf"
        main.write_text(NGINX_MAIN.format(run=work, user=user, sites="\n    ".join(f"include {s};" for s in sites)))  # fmt: skip
        check = subprocess.run([NGINX, "-t", "-p", str(work), "-c", str(main), "-e", str(work / "error.log")], capture_output=True, text=True)  # fmt: skip
        assert check.returncode == 0, check.stderr
        self._spawn("nginx", [NGINX, "-p", str(work), "-c", str(main), "-e", str(work / "error.log")])  # fmt: skip

    # --- what the tests use -------------------------------------------------------------
    @property
    def url(self) -> str:
        """The site, through nginx's upstream over every web node."""
        return f"http://127.0.0.1:{self.nginx_port}"

    @property
    def index_url(self) -> str:
        """The builder's index directory as its nginx serves it (what sync_index pulls)."""
        return f"http://127.0.0.1:{self.builder_port}/index/"

    def sync(self, *nodes: WebNode):
        """`manage.py sync_index --from <builder>` on these web nodes at once (their timers)."""
        return self.manage_all(
            [(node.data, ("sync_index", "--from", self.index_url)) for node in nodes]
        )

    def builder_manifest(self) -> dict | None:
        path = self.builder_data / "index" / "current" / "manifest.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def health(self, base_url: str) -> dict:
        status, _, body = http(f"{base_url}/healthz", headers={"Authorization": "Bearer cluster-health"})  # fmt: skip
        return json.loads(body) if status in (200, 503) else {"status": status}

    def sql(self, query: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(
            self.postgres.url_for(self.database or "meepo"), autocommit=True
        ) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def access_log(self) -> str:
        path = self.root / "nginx" / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(service.tail() for service in self.services)

    # --- stop ---------------------------------------------------------------------------
    def stop(self) -> None:
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception:  # keep killing the others
                service.kill()
        if self.postgres is not None:
            self.postgres.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # --- helpers ------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> Service:
        service = Service(
            name, command, env or self.env(self._dir(name)), self.root / f"{name}.log"
        )
        self.services.append(service.start())
        return service

    def _wait_redis(self) -> None:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.redis_port)

        def ping():
            try:
                return client.ping()
            except redis.ConnectionError:
                return False

        wait_for("redis", ping, 30)

    @staticmethod
    def _healthy(url: str) -> bool:
        try:
            return http(f"{url}/healthz", timeout=5)[0] == 200
        except OSError:
            return False
