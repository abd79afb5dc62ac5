"""manage.py sync_index: a web node pulls the builder's published version from a real HTTP server
on 127.0.0.1, verifies it and publishes it; every failure leaves the node's current version alone.

The builder and the node are two data directories of this test; the builder's index/ is served
by a threaded http.server (tests/deploy/test_builder_nginx.py does the same through nginx)."""

import http.server
import json
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from bench.planted_index import publish_arrays
from pipeline import index_sync
from pipeline.index_sync import SyncFailed, sync_index
from pipeline.indexing import build_index
from pipeline.lock import LOCKED_EXIT_CODE, pipeline_lock
from search import index as index_module
from search.health import check_health
from search.index import SearchIndex, get_index, index_root, published_dir
from search.manifest import MANIFEST_FILE, read_manifest
from search.models import Embedding
from tests.factories import ProductFactory, ProductImageFactory

MODEL = "test-model"
DIM = 16


def units(rows, dim=DIM, seed=0):
    x = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files, plus the faults a network can inject: bodies cut short."""

    truncate: set[str] = set()
    requests: list[str] = []

    def do_GET(self):
        self.requests.append(self.path)
        name = self.path.rsplit("/", 1)[-1]
        if name in self.truncate:
            data = Path(self.translate_path(self.path)).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])  # then the connection drops
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def nodes(settings, tmp_path):
    """(builder data dir, node data dir, switch(dir)): settings point at one of them at a time."""
    settings.MEEPO_CLIP_MODEL = MODEL
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0
    builder, node = tmp_path / "builder", tmp_path / "node"
    builder.mkdir()
    node.mkdir()

    def switch(data_dir):
        settings.MEEPO_DATA_DIR = data_dir
        index_module.reset_index_cache()

    switch(builder)
    return builder, node, switch


@pytest.fixture
def server(nodes):
    """A threaded HTTP server on 127.0.0.1 serving the builder's index/ directory."""
    builder = nodes[0]
    (builder / "index").mkdir(exist_ok=True)
    handler = type("H", (Handler,), {"truncate": set(), "requests": []})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(handler, directory=str(builder / "index"))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.handler = handler
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def planted(seed=0, rows=300):
    path, _, _ = publish_arrays(np.arange(1, rows + 1) * 3, units(rows, seed=seed), model=MODEL)
    return path


def tree(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def leftovers(data_dir: Path) -> list[str]:
    return [p.name for p in (data_dir / "index").iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.django_db
def test_a_built_version_syncs_byte_for_byte_and_answers_the_same_searches(nodes, server):
    _, node, switch = nodes
    for seed in range(12):  # a real build: snapshot/ subdirectory, vocabulary, held-out queries
        image = ProductImageFactory(product=ProductFactory(brand=f"B{seed % 3}"))
        vector = units(1, seed=seed)[0]
        Embedding.objects.create(asset=image.asset, model_name=MODEL, dim=DIM, vector=vector.tobytes())  # fmt: skip
    assert build_index().status == "published"
    source = published_dir()
    manifest = read_manifest(source)
    assert manifest.format == 3
    assert manifest.version == source.name
    listed = set(manifest.files)
    assert listed == set(tree(source)) - {MANIFEST_FILE}
    assert any("/" in name for name in listed)  # files in subdirectories are listed too
    queries = units(5, seed=99)
    expected = [get_index().search(q, 5) for q in queries]

    switch(node)
    report = sync_index(server.url)

    assert (report.status, report.version) == ("synced", source.name)
    synced = published_dir()
    assert synced == node / "index" / source.name
    assert tree(synced) == tree(source)  # identical manifest and files
    for q, (scores, ids) in zip(queries, expected, strict=True):
        got_scores, got_ids = get_index().search(q, 5)
        assert got_ids.tolist() == ids.tolist()
        assert np.array_equal(got_scores, scores)
    assert leftovers(node) == []
    assert check_health().index.ok


def test_already_current_downloads_nothing(nodes, server):
    _, node, switch = nodes
    version = planted().name
    switch(node)
    assert sync_index(server.url).status == "synced"
    server.handler.requests.clear()

    report = sync_index(server.url)

    assert (report.status, report.version) == ("already current", version)
    assert server.handler.requests == ["/current/manifest.json"]


def test_a_running_process_serves_the_synced_version_without_restart(nodes, server, settings):
    builder, node, switch = nodes
    planted(seed=0)
    switch(node)
    sync_index(server.url)
    first = get_index()  # the per-process holder the web workers use
    switch(builder)
    second_dir = planted(seed=1)
    settings.MEEPO_DATA_DIR = node  # back to the node, keeping its loaded index holder

    sync_index(server.url)

    now = get_index()
    assert now is not first
    assert now.version == second_dir.name
    q = units(1, seed=1)[0]
    assert now.search(q, 1)[1].tolist() == [3]  # row 0 of seed 1 is id 3, itself


def test_a_tampered_file_is_refused_and_the_node_keeps_its_version(nodes, server):
    builder, node, switch = nodes
    planted(seed=0)
    switch(node)
    sync_index(server.url)
    before = published_dir()
    switch(builder)
    newer = planted(seed=1)
    ids = newer / "ids.npy"
    data = bytearray(ids.read_bytes())
    data[-1] ^= 0xFF  # same size, other content
    ids.write_bytes(bytes(data))
    switch(node)

    with pytest.raises(SyncFailed, match=r"ids\.npy: sha256 .* does not match") as failed:
        sync_index(server.url)

    assert failed.value.exit_code == index_sync.EX_DATAERR
    assert published_dir() == before
    assert leftovers(node) == []
    assert not (node / "index" / newer.name).exists()


def test_a_truncated_download_is_refused(nodes, server):
    _, node, switch = nodes
    planted()
    switch(node)
    server.handler.truncate.add("vectors.npy")

    with pytest.raises(SyncFailed, match=r"vectors\.npy: truncated download") as failed:
        sync_index(server.url)

    assert failed.value.exit_code == index_sync.EX_DATAERR
    assert published_dir() is None
    assert leftovers(node) == []


def test_a_shortened_file_on_the_builder_is_refused(nodes, server):
    _, node, switch = nodes
    version = planted()
    index_file = version / "index.faiss"
    index_file.write_bytes(index_file.read_bytes()[:100])  # served whole, but not what was listed
    switch(node)

    with pytest.raises(SyncFailed, match=r"index\.faiss: truncated download, 100 of \d+ bytes"):
        sync_index(server.url)
    assert published_dir() is None


def test_pruning_keeps_index_keep_versions(nodes, server, settings):
    builder, node, switch = nodes
    settings.MEEPO_INDEX_KEEP = 2
    versions = []
    for seed in range(4):
        switch(builder)
        versions.append(planted(seed=seed, rows=50).name)
        switch(node)
        assert sync_index(server.url).version == versions[-1]

    kept = sorted(p.name for p in (node / "index").iterdir() if not p.is_symlink())
    assert kept == versions[-2:]
    assert published_dir().name == versions[-1]


def test_over_the_byte_cap_nothing_is_downloaded(nodes, server, settings):
    _, node, switch = nodes
    planted()
    switch(node)
    settings.MEEPO_SYNC_MAX_MB = 0

    with pytest.raises(SyncFailed, match="over MEEPO_SYNC_MAX_MB=0") as failed:
        sync_index(server.url)
    assert failed.value.exit_code == index_sync.EX_DATAERR
    assert server.handler.requests == ["/current/manifest.json"]


def test_nothing_published_on_the_builder_is_a_missing_manifest(nodes, server):
    _, node, switch = nodes
    switch(node)

    with pytest.raises(CommandError, match=r"HTTP 404 for .*/current/manifest\.json") as failed:
        call_command("sync_index", "--from", server.url)
    assert failed.value.returncode == index_sync.EX_NOINPUT


def test_an_unreachable_builder_is_a_clear_error(nodes, server):
    _, node, switch = nodes
    switch(node)
    url = server.url
    server.shutdown()
    server.server_close()

    with pytest.raises(
        CommandError, match=r"builder unreachable at .*Connection refused"
    ) as failed:
        call_command("sync_index", "--from", url)
    assert failed.value.returncode == index_sync.EX_UNAVAILABLE
    with pytest.raises(CommandError, match="--from must be") as failed:
        call_command("sync_index")  # MEEPO_SYNC_FROM is empty
    assert failed.value.returncode == index_sync.EX_USAGE


def test_a_version_from_before_checksums_serves_but_is_not_synced(nodes, server):
    _, node, switch = nodes
    version = planted()
    data = json.loads((version / MANIFEST_FILE).read_text())
    del data["files"]
    data["format"] = 2
    (version / MANIFEST_FILE).write_text(json.dumps(data))
    assert read_manifest(version).files == {}  # readers are tolerant
    assert SearchIndex.load(version).ntotal == 300
    switch(node)

    with pytest.raises(SyncFailed, match=r"no file list \(format 2 < 3\)") as failed:
        sync_index(server.url)
    assert failed.value.exit_code == index_sync.EX_NOINPUT


def test_a_manifest_entry_outside_the_version_is_refused(nodes, server):
    _, node, switch = nodes
    version = planted()
    data = json.loads((version / MANIFEST_FILE).read_text())
    data["files"]["../../escape"] = {"size": 1, "sha256": "0" * 64}
    (version / MANIFEST_FILE).write_text(json.dumps(data))
    switch(node)

    with pytest.raises(SyncFailed, match=r"unsafe entry '\.\./\.\./escape'"):
        sync_index(server.url)
    assert not (node / "escape").exists()
    assert not index_root().exists() or leftovers(node) == []


def test_the_command_prints_one_line_and_is_quiet_when_current(nodes, server, capsys):
    _, node, switch = nodes
    version = planted().name
    switch(node)

    call_command("sync_index", "--from", server.url.rstrip("/"))  # the trailing slash is optional
    out = capsys.readouterr().out
    assert out.startswith(f"index {version}: synced 4 files")
    assert out.count("\n") == 1
    call_command("sync_index", "--from", server.url, "--quiet")
    assert capsys.readouterr().out == ""


@pytest.mark.django_db
def test_a_format_2_version_is_still_updated_incrementally(nodes):
    """Format 3 only added the file list: the first build after an upgrade stays incremental."""

    def add(n, seed):
        for vector in units(n, seed=seed):
            image = ProductImageFactory(product=ProductFactory())
            Embedding.objects.create(asset=image.asset, model_name=MODEL, dim=DIM, vector=vector.tobytes())  # fmt: skip

    add(10, seed=0)
    assert build_index().mode == "full"
    old = published_dir()
    data = json.loads((old / MANIFEST_FILE).read_text())
    del data["files"]
    data["format"] = 2
    (old / MANIFEST_FILE).write_text(json.dumps(data))
    add(3, seed=1)

    report = build_index()

    assert (report.status, report.mode, report.added) == ("published", "incremental", 3)
    assert read_manifest(published_dir()).format == 3
    assert set(read_manifest(published_dir()).files) >= {"ids.npy", "vectors.npy", "index.faiss"}


def test_a_sync_while_a_build_holds_the_lock_exits_75_and_downloads_nothing(nodes, server):
    _, node, switch = nodes
    switch(node)

    with pipeline_lock(), pytest.raises(CommandError, match="lock") as locked:
        call_command("sync_index", "--from", server.url)
    assert locked.value.returncode == LOCKED_EXIT_CODE
    assert not (index_root() / "current").exists()
