"""The demo shop's request handling: request log records, faults, conditional GETs, compression.

`make_handler(shop)` builds the BaseHTTPRequestHandler class the shop's server uses.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import brotli

from demo.shop import drawing, render
from demo.shop.render import Reply

if TYPE_CHECKING:
    from demo.shop.server import DemoShop

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")


@dataclass
class RecordedRequest:
    time: float  # time.monotonic() when the request line arrived
    method: str
    path: str  # including the query string
    headers: dict[str, str]  # names lower-cased
    status: int = 0
    bytes_sent: int = 0  # body bytes on the wire (after compression)
    finished: float = 0.0  # time.monotonic() when the answer was written (0: never)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Fault:
    """Misbehave on paths matching `pattern` (fnmatch on path+query), `times` times or forever."""

    pattern: str
    kind: str
    times: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    hits: int = 0


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """Clients hanging up mid-answer is part of the test plan (caps, deadlines): stay quiet."""


def _http_date(dt: datetime) -> str:
    return email.utils.format_datetime(dt.astimezone(UTC), usegmt=True)


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _etag(body: bytes) -> str:
    return 'W/"' + hashlib.sha1(body).hexdigest()[:20] + '"'


def _not_modified(headers: dict[str, str], etag: str, last_modified: datetime | None) -> bool:
    if inm := headers.get("if-none-match"):
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or etag.removeprefix("W/") in tags
    if (ims := headers.get("if-modified-since")) and last_modified:
        try:
            since = email.utils.parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
        return since.tzinfo is not None and last_modified <= since
    return False


def _compress(body: bytes, accept: str) -> tuple[bytes, str | None]:
    codings = {c.split(";")[0].strip() for c in accept.lower().split(",")}
    if "br" in codings:
        return brotli.compress(body, quality=5), "br"
    if "gzip" in codings:
        return gzip.compress(body, compresslevel=6, mtime=0), "gzip"
    return body, None


def make_handler(shop: DemoShop) -> type[BaseHTTPRequestHandler]:
    """The request handler class bound to `shop`: records, applies faults, serves routes.

    Long: a class body (a closure over `shop`), each of its methods short.
    """

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "DemoShop/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            """Silenced: the shop keeps its own structured request log."""

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            record = RecordedRequest(
                time.monotonic(),
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
            )
            with shop._lock:
                shop.requests.append(record)
            fault = shop._take_fault(self.path)
            if fault and fault.kind == "delay":
                time.sleep(fault.params.get("seconds", 1.0))
                fault = None
            if fault and fault.kind == "close":
                self.close_connection = True
                record.status = 0
                return
            reply = shop.route(self.path)
            _apply_fault(self, shop, fault, reply, record) if fault else self._send(reply, record)

        def _send(self, reply: Reply, record: RecordedRequest, *, drip: dict | None = None) -> None:
            body, headers = reply.body, dict(reply.headers)
            if reply.status == 200:
                etag = _etag(body)
                headers["ETag"] = etag
                if reply.last_modified:
                    headers["Last-Modified"] = _http_date(reply.last_modified)
                if _not_modified(record.headers, etag, reply.last_modified):
                    self._write(304, headers, b"", record)
                    return
            if reply.content_type.startswith(_TEXT_TYPES) and body:
                headers["Vary"] = "Accept-Encoding"
                body, coding = _compress(body, record.headers.get("accept-encoding", ""))
                if coding:
                    headers["Content-Encoding"] = coding
            headers["Content-Type"] = reply.content_type
            self._write(reply.status, headers, body, record, drip=drip)

        def _write(
            self,
            status: int,
            headers: dict[str, str],
            body: bytes,
            record: RecordedRequest,
            *,
            drip: dict | None = None,
        ) -> None:
            record.status = status
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers and status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command == "HEAD" or status == 304:
                    return
                if drip:
                    size, interval = drip.get("chunk", 1), drip.get("interval", 0.5)
                    for start in range(0, len(body), size):
                        self.wfile.write(body[start : start + size])
                        self.wfile.flush()
                        record.bytes_sent += len(body[start : start + size])
                        time.sleep(interval)
                else:
                    self.wfile.write(body)
                    record.bytes_sent = len(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up; that is its right
            record.finished = time.monotonic()

        def stream(self, status: int, headers: dict[str, str], size: int, record) -> None:
            record.status = status
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                block = b"A" * 65536
                sent = 0
                while sent < size:
                    n = min(len(block), size - sent)
                    self.wfile.write(block[:n])
                    sent += n
                    record.bytes_sent = sent
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True

    return Handler


def _apply_fault(handler, shop: DemoShop, fault: Fault, reply: Reply, record) -> None:
    """Answer with `fault` instead of (or on top of) the normal reply.

    Long: one short branch per fault kind, a flat table a test author reads top to bottom.
    """
    p = fault.params
    if fault.kind == "status":
        reply = Reply(
            p.get("status", 503),
            p.get("content_type", "text/html"),
            p.get("body", b"<html><body>Error</body></html>"),
            dict(p.get("headers", {})),
        )
    elif fault.kind == "retry_after":
        headers = {"Retry-After": str(p["value"])} if "value" in p else {}
        reply = Reply(p.get("status", 429), "text/plain", b"Too many requests", headers)
    elif fault.kind == "drip":
        handler._send(reply, record, drip=p)
        return
    elif fault.kind == "drip_headers":
        # A header line every `interval` s: every read is quick, the headers never end.
        record.status = 200
        try:
            handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for n in range(p.get("lines", 1000)):
                handler.wfile.flush()
                time.sleep(p.get("interval", 0.2))
                handler.wfile.write(f"X-Slow-{n}: {'x' * 8}\r\n".encode())
        except OSError:
            pass  # the client gave up: that is the point
        handler.close_connection = True
        return
    elif fault.kind == "huge":
        headers = {"Content-Type": p.get("content_type", reply.content_type.split(";")[0])}
        if p.get("length", True):
            headers["Content-Length"] = str(p["size"])
        headers["Connection"] = "close"
        handler.stream(200, headers, p["size"], record)
        return
    elif fault.kind == "gzip_bomb":
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        zeros = b" " * 1_048_576
        body = b"".join(
            comp.compress(zeros) for _ in range(p.get("size", 200 * 2**20) // len(zeros))
        )
        body += comp.flush()
        headers = {"Content-Type": reply.content_type, "Content-Encoding": "gzip"}
        handler._write(200, headers, body, record)
        return
    elif fault.kind == "redirect":
        location = p["location"].replace("{base}", shop.base_url)
        reply = Reply(p.get("status", 302), "text/html", b"", {"Location": location})
    elif fault.kind == "wrong_type":
        reply = Reply(
            200,
            p.get("content_type", "text/html; charset=utf-8"),
            p.get("body", b"<html><body>Please log in</body></html>"),
        )
    elif fault.kind == "truncate":
        reply = Reply(
            reply.status,
            reply.content_type,
            reply.body[: int(len(reply.body) * p.get("fraction", 0.5))],
            reply.headers,
        )
    elif fault.kind == "bomb":
        reply = Reply(200, "image/png", _bomb())
    elif fault.kind == "soft404":
        reply = render.html_reply("<html><title>Page not found</title><body>Sorry</body></html>")
    else:
        raise ValueError(f"unknown fault kind {fault.kind!r}")
    handler._send(reply, record)


_BOMB: list[bytes] = []


def _bomb() -> bytes:
    if not _BOMB:
        _BOMB.append(drawing.png_bomb())
    return _BOMB[0]
