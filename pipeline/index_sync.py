"""Stage `sync_index` (web nodes): pull the builder's published index version over HTTP, verify it,
publish it here exactly as a local build does.

The builder's nginx serves its MEEPO_DATA_DIR/index/ read-only (deploy/nginx/meepo-builder.conf).
`<source>current/manifest.json` (through the builder's `current` symlink) is the pointer: its
`version` names the directory to fetch and its `files` list every other file with size and sha256
(search.manifest, format 3). Then:

  already current   this node's `index/current` is that version: nothing is downloaded (exit 0)
  otherwise         every file is streamed from `<source><version>/<path>` into
                    index/.tmp-<version>/ with a connect/read timeout, never more bytes than the
                    manifest declares (and the version's total under MEEPO_SYNC_MAX_MB), hashed
                    as it arrives and fsynced; the manifest's own bytes are written last; then
                    pipeline.indexing.publish.publish renames the directory into place and swaps
                    `index/current` in one os.replace, and prune keeps MEEPO_INDEX_KEEP versions

Guarantees: any failure (builder unreachable, a checksum or size that does not match, a truncated
download, disk full) removes the temporary directory and leaves `current` as it was; the web
workers keep serving it. On success the workers' hot reload (search.index) loads the new version
within MEEPO_INDEX_RELOAD_SECONDS. Idempotent: a second run in a row downloads nothing. The caller
holds the pipeline lock (one writer of index/ per data directory).

The source URL is set by the operator (a private network between the cluster's machines), so it
does not go through the crawler's SSRF guard; it is bounded by the timeout and the byte cap, and
it never follows redirects or environment proxies.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlsplit

import requests
from django.conf import settings

from catalog.exceptions import MeepoError
from pipeline.indexing import publish
from search.durable import fsync_path
from search.index import index_root, published_dir
from search.manifest import MANIFEST_FILE, FileInfo, Manifest

logger = logging.getLogger(__name__)

# Exit codes, from sysexits.h (documented in `manage.py sync_index --help` and docs/deploy.md).
EX_USAGE = 64  # no source URL, or not an http(s) URL
EX_DATAERR = 65  # a download does not match the manifest (checksum, size, truncated) or the cap
EX_NOINPUT = 66  # the builder answers but publishes no usable manifest (404, not JSON, no files)
EX_UNAVAILABLE = 69  # the builder cannot be reached (refused, DNS, timeout, 5xx)
EX_IOERR = 74  # this node cannot write the version (disk full, permissions)

MANIFEST_MAX_BYTES = 16 * 1024 * 1024
CHUNK = 1 << 20
VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
USER_AGENT = "meepo-sync-index"


class SyncFailed(MeepoError):
    """The version could not be synced; nothing was swapped. `exit_code` says why (EX_*)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class SyncReport:
    status: str  # synced | already current
    version: str
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    pruned: tuple[str, ...] = ()

    def summary(self) -> str:
        if self.status != "synced":
            return f"index {self.version}: already current"
        mb = self.bytes / 1e6
        rate = mb / self.seconds if self.seconds else 0.0
        return (
            f"index {self.version}: synced {self.files} files, {mb:.1f} MB in "
            f"{self.seconds:.1f} s ({rate:.1f} MB/s), verified, now current"
        )


def sync_index(source: str) -> SyncReport:
    """Make the builder's current version at `source` this node's current version."""
    started = time.monotonic()
    base = normalize_source(source)
    with _session() as session:
        raw = _get_manifest(session, base)
        manifest = _parse_manifest(raw, base)
        version = manifest.version
        current = published_dir()
        if current is not None and current.name == version:
            return SyncReport(status="already current", version=version)
        _check_budget(manifest)
        publish.prune(settings.MEEPO_INDEX_KEEP)  # leftovers of a crashed run
        root = index_root()
        stale = root / version
        if stale.exists():  # kept here from before, but not current: fetch it afresh
            shutil.rmtree(stale)
        work = _start(version)
        try:
            total = _download_all(session, base, manifest, work)
            _write_bytes(work / MANIFEST_FILE, raw)  # last, as a build writes it
            for dirpath, _, _ in os.walk(work):  # the directory entries; publish syncs the rename
                fsync_path(Path(dirpath))
            publish.publish(work, version)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    pruned = publish.prune(settings.MEEPO_INDEX_KEEP)
    return SyncReport(
        status="synced",
        version=version,
        files=len(manifest.files) + 1,
        bytes=total + len(raw),
        seconds=time.monotonic() - started,
        pruned=tuple(pruned),
    )


def normalize_source(source: str) -> str:
    """The index directory's URL, ending in "/"."""
    parts = urlsplit(source or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SyncFailed(
            f"--from must be the builder's index URL, e.g. http://builder:8081/index/ (got {source!r})",
            EX_USAGE,
        )
    return source if source.endswith("/") else source + "/"


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no environment proxies or .netrc: a private, operator-set URL
    session.headers["User-Agent"] = USER_AGENT
    return session


def _get(session: requests.Session, url: str) -> requests.Response:
    timeout = settings.MEEPO_SYNC_TIMEOUT_SECONDS
    try:
        response = session.get(url, stream=True, timeout=(timeout, timeout), allow_redirects=False)
    except requests.RequestException as exc:
        raise SyncFailed(f"builder unreachable at {url}: {_reason(exc)}", EX_UNAVAILABLE) from exc
    if response.status_code != 200:
        response.close()
        code = EX_NOINPUT if response.status_code in (403, 404, 410) else EX_UNAVAILABLE
        raise SyncFailed(f"builder answered HTTP {response.status_code} for {url}", code)
    return response


def _get_manifest(session: requests.Session, base: str) -> bytes:
    url = f"{base}current/{MANIFEST_FILE}"
    with _get(session, url) as response:
        body = bytearray()
        try:
            for chunk in response.iter_content(CHUNK):
                body += chunk
                if len(body) > MANIFEST_MAX_BYTES:
                    raise SyncFailed(f"manifest at {url} is over {MANIFEST_MAX_BYTES} bytes", EX_NOINPUT)  # fmt: skip
        except requests.RequestException as exc:
            raise SyncFailed(
                f"builder unreachable at {url}: {_reason(exc)}", EX_UNAVAILABLE
            ) from exc
    return bytes(body)


def _parse_manifest(raw: bytes, base: str) -> Manifest:
    where = f"{base}current/{MANIFEST_FILE}"
    try:
        manifest = Manifest.from_json(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise SyncFailed(f"manifest at {where} is not a valid manifest: {exc}", EX_NOINPUT) from exc
    if not manifest.files:
        raise SyncFailed(
            f"version at {where} has no file list (format {manifest.format} < 3): run "
            "build_index --force on the builder with this release",
            EX_NOINPUT,
        )
    if not VERSION_NAME.match(manifest.version or ""):
        raise SyncFailed(f"manifest at {where} names no usable version ({manifest.version!r})", EX_NOINPUT)  # fmt: skip
    for path, info in manifest.files.items():
        if not _safe_path(path) or not isinstance(info.size, int) or info.size < 0:
            raise SyncFailed(f"manifest at {where} lists an unsafe entry {path!r}", EX_NOINPUT)
        if not re.fullmatch(r"[0-9a-f]{64}", str(info.sha256)):
            raise SyncFailed(f"manifest at {where} has no sha256 for {path!r}", EX_NOINPUT)
    return manifest


def _safe_path(path: str) -> bool:
    """A plain relative path inside the version directory (no "..", no absolute, no manifest)."""
    pure = PurePosixPath(path)
    return (
        bool(path)
        and "\\" not in path
        and "\x00" not in path
        and not pure.is_absolute()
        and all(part not in ("", ".", "..") for part in path.split("/"))
        and path != MANIFEST_FILE
    )


def _check_budget(manifest: Manifest) -> None:
    total = sum(info.size for info in manifest.files.values())
    cap = settings.MEEPO_SYNC_MAX_MB * 1024 * 1024
    if total > cap:
        raise SyncFailed(
            f"version {manifest.version} is {total / 2**20:.0f} MB, over MEEPO_SYNC_MAX_MB="
            f"{settings.MEEPO_SYNC_MAX_MB}",
            EX_DATAERR,
        )
    root = index_root()
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if total > free:
        raise SyncFailed(f"version {manifest.version} needs {total} bytes, {root} has {free} free", EX_IOERR)  # fmt: skip


def _start(version: str) -> Path:
    try:
        return publish.start_version(version)
    except OSError as exc:
        raise SyncFailed(f"cannot create a version directory in {index_root()}: {exc}", EX_IOERR) from exc  # fmt: skip


def _download_all(session, base: str, manifest: Manifest, work: Path) -> int:
    total = 0
    for path, info in sorted(manifest.files.items()):
        url = f"{base}{quote(manifest.version)}/{quote(path)}"
        total += _download(session, url, path, info, work / path)
    return total


def _download(session, url: str, name: str, info: FileInfo, target: Path) -> int:
    """Stream one file to `target`, refusing more bytes than declared; verify size and sha256."""
    digest = hashlib.sha256()
    size = 0
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _get(session, url) as response, open(target, "xb") as out:
            try:
                for chunk in response.iter_content(CHUNK):
                    size += len(chunk)
                    if size > info.size:
                        raise SyncFailed(f"{name}: the builder sent more than the manifest's {info.size} bytes", EX_DATAERR)  # fmt: skip
                    digest.update(chunk)
                    out.write(chunk)
            except requests.RequestException as exc:
                raise SyncFailed(f"{name}: truncated download, {size} of {info.size} bytes ({_reason(exc)})", EX_DATAERR) from exc  # fmt: skip
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise SyncFailed(f"{name}: cannot write {target}: {exc}", EX_IOERR) from exc
    if size != info.size:
        raise SyncFailed(f"{name}: truncated download, {size} of {info.size} bytes", EX_DATAERR)
    if digest.hexdigest() != info.sha256:
        raise SyncFailed(f"{name}: sha256 {digest.hexdigest()[:12]}… does not match the manifest's {info.sha256[:12]}…", EX_DATAERR)  # fmt: skip
    return size


def _write_bytes(path: Path, data: bytes) -> None:
    try:
        with open(path, "xb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise SyncFailed(f"cannot write {path}: {exc}", EX_IOERR) from exc


def _reason(exc: Exception) -> str:
    """The innermost cause in one line (requests nests urllib3's errors several levels deep)."""
    for _ in range(10):
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
