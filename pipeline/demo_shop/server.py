"""The demo shop's HTTP server: a real, threaded server on 127.0.0.1 with switchable misbehaviour.

`DemoShop` owns the catalogue and the server thread. Every request is recorded (monotonic time,
method, path, headers, status, bytes sent) so tests can measure politeness on the wire. Responses
carry ETag/Last-Modified and honour If-None-Match/If-Modified-Since with 304; text is gzip or
brotli compressed when asked, images never are. Faults (`add_fault`) replace or slow down the
answer for matching paths: status codes with Retry-After, slow drip, bombs, huge bodies,
redirect loops, wrong content types and so on.
"""

from __future__ import annotations

import email.utils
import fnmatch
import gzip
import hashlib
import re
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import brotli

from pipeline.demo_shop import drawing, render
from pipeline.demo_shop.catalog import DemoImage, DemoProduct, make_product
from pipeline.demo_shop.render import Reply

FLAVOURS = ("shopify", "woocommerce", "schema_org")
DEFAULT_ROBOTS = (
    "User-agent: *\nDisallow: /cart\nDisallow: /checkout\n\nSitemap: {base}/sitemap.xml\n"
)
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
_IMAGE_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
_IMAGE_PATH = re.compile(
    r"^/(?:cdn/shop/files|wp-content/uploads/2026/01|images)/"
    r"(?P<name>[\w-]+?)(?:-(?P<w>\d+)x\d+)?\.(?P<ext>jpg|png|webp|gif)$"
)


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


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """Clients hanging up mid-answer is part of the test plan (caps, deadlines): stay quiet."""


def _http_date(dt: datetime) -> str:
    return email.utils.format_datetime(dt.astimezone(UTC), usegmt=True)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class DemoShop:
    """A fixture shop. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        flavour: str = "shopify",
        products: int = 60,
        seed: int = 0,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        currency: str | None = None,
        plain_permalinks: bool = False,
    ) -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {FLAVOURS}")
        self.flavour = flavour
        self.seed = seed
        self.currency = currency or ("USD" if flavour == "woocommerce" else "EUR")
        # WordPress on "plain" permalinks: no /wp-json/, only /?rest_route=.
        self.plain_permalinks = plain_permalinks
        self.host, self.port = host, port
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.robots_txt: str | None = DEFAULT_ROBOTS
        self.robots_status = 200
        self.started_at = self.changed_at = _now()
        self.products: list[DemoProduct] = []
        self._next_index = 0
        self._lock = threading.RLock()
        self._image_cache: dict[tuple[str, str, int | None], bytes] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add_products(products)

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> DemoShop:
        self._server = _QuietServer((self.host, self.port), _make_handler(self))
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> DemoShop:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- catalogue changes -------------------------------------------------------------------
    def add_products(self, n: int) -> list[DemoProduct]:
        with self._lock:
            added = []
            for _ in range(n):
                i = self._next_index
                fmt = "jpg"
                if self.flavour == "schema_org":  # exercise every allowed format
                    fmt = ["jpg", "png", "webp", "jpg", "gif"][i % 5]
                added.append(make_product(self.seed, i, self.currency, fmt))
                self._next_index += 1
            self.products.extend(added)
            if self._server:
                self.changed_at = _now()
            return added

    def product(self, key: int | str) -> DemoProduct:
        for p in self.products:
            if key in (p.id, p.handle):
                return p
        raise KeyError(key)

    def remove_product(self, key: int | str) -> DemoProduct:
        with self._lock:
            p = self.product(key)
            self.products.remove(p)
            self.changed_at = _now()
            return p

    def update_product(self, key: int | str, **changes: Any) -> DemoProduct:
        with self._lock:
            p = self.product(key)
            for name, value in changes.items():
                setattr(p, name, value)
            p.updated_at = self.changed_at = _now()
            return p

    def break_product(self, key: int | str, quirk: str) -> DemoProduct:
        """Quirks: malformed_jsonld, only_malformed_jsonld, no_price, soft404, comma_price,
        symbol_currency."""
        p = self.product(key)
        p.quirks.add(quirk)
        return p

    # --- misbehaviour ------------------------------------------------------------------------
    def add_fault(
        self, pattern: str, kind: str, *, times: int | None = None, **params: Any
    ) -> Fault:
        """Kinds: status, retry_after, delay, drip, huge, gzip_bomb, redirect, wrong_type,
        truncate, bomb, soft404, close. See `_apply_fault` for their parameters."""
        fault = Fault(pattern, kind, times, params)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def set_robots(self, text: str | None, status: int = 200) -> None:
        self.robots_txt, self.robots_status = text, status

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # --- URLs ---------------------------------------------------------------------------------
    def product_url(self, key: int | str) -> str:
        return self.base_url + render._page_path(self, self.product(key))

    def image_url(self, key: int | str, position: int = 0) -> str:
        return self.base_url + render.image_path(self, self.product(key).images[position])

    def image_path(self, key: int | str, position: int = 0) -> str:
        return urlsplit(self.image_url(key, position)).path

    # --- request handling --------------------------------------------------------------------
    def _take_fault(self, target: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times is not None and fault.hits >= fault.times:
                    continue
                if fnmatch.fnmatchcase(target, fault.pattern) or fnmatch.fnmatchcase(
                    urlsplit(target).path, fault.pattern
                ):
                    fault.hits += 1
                    return fault
        return None

    def route(self, target: str) -> Reply:
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        if path == "/robots.txt":
            if self.robots_txt is None:
                return render.not_found()
            text = self.robots_txt.replace("{base}", self.base_url)
            return Reply(
                self.robots_status, "text/plain; charset=utf-8", text.encode(), {}, self.started_at
            )
        if self.flavour == "woocommerce" and query.get("rest_route") == ["/wc/store/v1/products"]:
            return render.woo_products(self, query, "/?rest_route=/wc/store/v1/products")
        if path == "/":
            return render.home_page(self)
        if reply := render.sitemap(self, path):
            return reply
        if m := _IMAGE_PATH.match(path):
            width = int(m["w"]) if m["w"] else int(query.get("width", ["0"])[0] or 0) or None
            return self._image(m["name"], m["ext"], width)
        with self._lock:
            products = list(self.products)
        handles = {p.handle: (i, p) for i, p in enumerate(products)}
        if self.flavour == "shopify":
            if path in ("/products.json", "/collections/all/products.json"):
                return render.shopify_products_json(self, query)
            if path == "/cart.js":
                return render.shopify_cart(self)
            if path.startswith("/products/") and path[10:] in handles:
                return render.product_page(self, handles[path[10:]][1], handles[path[10:]][0])
        if self.flavour == "woocommerce":
            if path.startswith("/wp-json/") and self.plain_permalinks:
                return render.not_found()
            if path == "/wp-json/":
                return render.woo_index(self)
            if path == "/wp-json/wc/store/v1/products":
                return render.woo_products(self, query, path)
            slug = path.removeprefix("/product/").rstrip("/")
            if path.startswith("/product/") and slug in handles:
                return render.product_page(self, handles[slug][1], handles[slug][0])
        if self.flavour == "schema_org":
            if path.startswith("/p/") and path[3:] in handles:
                return render.product_page(self, handles[path[3:]][1], handles[path[3:]][0])
            if path == "/about":
                return render.html_reply("<html><title>About us</title><body>Hi</body></html>")
        return render.not_found()

    def _image(self, name: str, ext: str, width: int | None) -> Reply:
        key = (name, ext, width)
        data = self._image_cache.get(key)
        if data is None:
            found = self._find_image(name)
            if found is None or found[1].fmt != ext:
                return render.not_found()
            product, image = found
            if image.kind == "size_chart":
                picture = drawing.draw_size_chart()
            else:
                picture = drawing.draw_product_image(product, image)
            data = drawing.encode(picture, ext, width)
            self._image_cache[key] = data
        headers = {"Cache-Control": "public, max-age=31536000, immutable"}
        return Reply(200, _IMAGE_TYPES[ext], data, headers, self.started_at)

    def _find_image(self, name: str) -> tuple[DemoProduct, DemoImage] | None:
        with self._lock:
            for p in self.products:
                for im in p.images:
                    if im.name == name:
                        return p, im
        return None


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


def _make_handler(shop: DemoShop) -> type[BaseHTTPRequestHandler]:
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
