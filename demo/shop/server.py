"""The demo shop's HTTP server: a real, threaded server on 127.0.0.1 with switchable misbehaviour.

`DemoShop` owns the catalogue and the server thread. Every request is recorded (monotonic time,
method, path, headers, status, bytes sent) so tests can measure politeness on the wire. Responses
carry ETag/Last-Modified and honour If-None-Match/If-Modified-Since with 304; text is gzip or
brotli compressed when asked, images never are. Faults (`add_fault`) replace or slow down the
answer for matching paths: status codes with Retry-After, slow drip, bombs, huge bodies,
redirect loops, wrong content types and so on.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from decimal import Decimal
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from demo.shop import apis, drawing, render
from demo.shop.catalog import DemoImage, DemoProduct, make_product
from demo.shop.handler import Fault, QuietServer, RecordedRequest, make_handler, now_utc
from demo.shop.render import Reply

FLAVOURS = ("shopify", "woocommerce", "schema_org")
MARKUPS = ("full", "none")
DEFAULT_ROBOTS = (
    "User-agent: *\nDisallow: /cart\nDisallow: /checkout\n\nSitemap: {base}/sitemap.xml\n"
)
_IMAGE_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
_IMAGE_PATH = re.compile(
    r"^/(?:cdn/shop/files|wp-content/uploads/2026/01|images)/"
    r"(?P<name>[\w-]+?)(?:-(?P<w>\d+)x\d+)?\.(?P<ext>jpg|png|webp|gif)$"
)


def _priced(product: DemoProduct, factor: Decimal) -> DemoProduct:
    if factor == 1:
        return product

    def scale(value: Decimal | None) -> Decimal | None:
        return None if value is None else (value * factor).quantize(Decimal("0.01"))

    product.price, product.list_price = scale(product.price), scale(product.list_price)
    for variant in product.variants:
        variant.price, variant.list_price = scale(variant.price), scale(variant.list_price)
    return product


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
        markup: str = "full",
        price_factor: Decimal = Decimal("1"),
    ) -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {FLAVOURS}")
        if markup not in MARKUPS or (markup == "none" and flavour != "schema_org"):
            raise ValueError(f"markup must be one of {MARKUPS} ('none' for schema_org only)")
        # "none": product pages without JSON-LD, microdata or OpenGraph, only visible text.
        self.markup = markup
        # Another store selling the same products (same seed: same GTINs) at other prices.
        self.price_factor = Decimal(price_factor)
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
        self.started_at = self.changed_at = now_utc()
        self.products: list[DemoProduct] = []
        self._next_index = 0
        self._lock = threading.RLock()
        self._image_cache: dict[tuple[str, str, int | None], bytes] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add_products(products)

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> DemoShop:
        self._server = QuietServer((self.host, self.port), make_handler(self))
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
                added.append(
                    _priced(make_product(self.seed, i, self.currency, fmt), self.price_factor)
                )
                self._next_index += 1
            self.products.extend(added)
            if self._server:
                self.changed_at = now_utc()
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
            self.changed_at = now_utc()
            return p

    def update_product(self, key: int | str, **changes: Any) -> DemoProduct:
        with self._lock:
            p = self.product(key)
            for name, value in changes.items():
                setattr(p, name, value)
            p.updated_at = self.changed_at = now_utc()
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

    def set_robots(self, text: str | None, status: int = 200) -> None:
        self.robots_txt, self.robots_status = text, status

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # --- URLs ---------------------------------------------------------------------------------
    def product_url(self, key: int | str) -> str:
        return self.base_url + render.page_path(self, self.product(key))

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
            return apis.woo_products(self, query, "/?rest_route=/wc/store/v1/products")
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
                return apis.shopify_products_json(self, query)
            if path == "/cart.js":
                return apis.shopify_cart(self)
            if path.startswith("/products/") and path[10:] in handles:
                return render.product_page(self, handles[path[10:]][1], handles[path[10:]][0])
        if self.flavour == "woocommerce":
            if path.startswith("/wp-json/") and self.plain_permalinks:
                return render.not_found()
            if path == "/wp-json/":
                return apis.woo_index(self)
            if path == "/wp-json/wc/store/v1/products":
                return apis.woo_products(self, query, path)
            variation = path.removeprefix("/wp-json/wc/store/v1/products/")
            if variation != path and variation.isdigit():
                return apis.woo_variation(self, int(variation)) or render.not_found()
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
