"""Server CPU of the request path around the search view: Django's WSGI handler, each middleware,
URL resolution and the view's own glue, per GET /search?q=..., without any HTTP client.

Requests go straight into `django.core.handlers.wsgi.WSGIHandler` with an environ shaped like
gunicorn's behind nginx (unix socket, X-Forwarded-For, a browser's headers), and the body is
consumed and closed as gunicorn does (`request_finished`), so django.test.Client's own work is
not counted. Cost is process CPU time (`time.process_time`), not wall time.

Per round, interleaved: a unique search and a repeated one (a page-cache hit, as in production,
MEEPO_SEARCH_PAGE_CACHE_SECONDS=60) through each handler:

- "now": settings.MIDDLEWARE as configured;
- "before" (with --before): the stock middleware list this project used before the request path
  was trimmed (BEFORE below) and the code before it (`code_before`: SearchForm's deep-copied
  fields, the page cache's string fingerprint), so one run compares the two;
- "layers" (and "layers before" with --before): the same stacks with a CPU timer around every
  layer, giving each middleware's own (exclusive) cost, URL resolution, each process_view hook,
  the view and its calls, and the WSGI handler's part outside the middleware (request object,
  signals, header list, close). The timers add ~0.05 ms a request.

    .venv/bin/python -m bench.request_path --products 100000 --rounds 100 --before

The catalogue and index are bench/search.py's (bench/search_catalogue.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit_json, machine, print_table
from bench.search_cpu import Profiler

# settings.MIDDLEWARE before the request path was trimmed (issue 13).
BEFORE = [
    "django.middleware.security.SecurityMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]


def _fingerprint_before(product_ids):
    """search.result_cache.product_fingerprint before issue 13's pass: every value a string."""
    from django.db import connection

    if not product_ids:
        return ()
    marks = ", ".join(["%s"] * len(product_ids))
    sql = (
        "SELECT id, is_active, price, list_price, availability, updated_at "
        f"FROM catalog_product WHERE id IN ({marks}) ORDER BY id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, list(product_ids))
        return tuple(tuple(str(v) for v in row) for row in cursor.fetchall())


@contextlib.contextmanager
def code_before():
    """The "before" handler's requests also run the code before the pass: SearchForm's fields
    deep-copied into each instance (a plain dict) and the string fingerprint."""
    from search import forms, result_cache

    shared, fingerprint = forms.SearchForm.base_fields, result_cache.product_fingerprint
    forms.SearchForm.base_fields = dict(shared)
    result_cache.product_fingerprint = _fingerprint_before
    try:
        yield
    finally:
        forms.SearchForm.base_fields = shared
        result_cache.product_fingerprint = fingerprint


# Calls inside the view, timed in the "layers" handler (module attribute lookups, as search_cpu).
VIEW_CALLS = {
    "search.views": [
        "render",
        "render_results_page",
        "lenient_search_form",
        "facet_groups",
        "applied_filters",
    ],
    "search.result_cache": ["request_key", "cached_response", "keep_response"],
    "search.services": ["search_products", "index_version"],
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--before", action="store_true", help="also the BEFORE middleware list")
    parser.add_argument("--client", action="store_true", help="also through django.test.Client")
    parser.add_argument("--json", help="also write the JSON result here")
    return parser.parse_args()


def environ_for(path: str, query: str) -> dict:
    """A WSGI environ as gunicorn builds it for nginx's proxied request over a unix socket."""
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.0",
        "REMOTE_ADDR": "",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_X_FORWARDED_FOR": "203.0.113.7",
        "HTTP_X_FORWARDED_PROTO": "http",
        "HTTP_CONNECTION": "close",
        "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.5",
        "HTTP_ACCEPT_ENCODING": "gzip, deflate, br",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def serve(handler, path: str, params: dict) -> tuple[str, dict, bytes]:
    """One request through `handler` as gunicorn serves it: status, headers, body."""
    if not callable(handler):  # django.test.Client
        response = handler.get(path, params)
        return str(response.status_code), dict(response.headers), response.content
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(headers)

    result = handler(environ_for(path, urlencode(params)), start_response)
    try:
        body = b"".join(result)
    finally:
        result.close()
    return seen["status"], seen["headers"], body


class Layers(Profiler):
    """CPU ms per layer of one handler: each middleware (inclusive, made exclusive after),
    URL resolution, each process_view hook and the view."""

    def __init__(self) -> None:
        super().__init__()
        self.orders: dict[str, list[str]] = {}  # handler name -> its layers, innermost first

    def timed(self, label: str, fn):
        return self._wrap(label, fn)  # search_cpu's CPU-ms wrapper, into self.current

    def build(self, handler_class, name: str):
        """A handler whose every layer is timed (built as load_middleware builds it)."""
        from django.core.handlers import base

        real = base.convert_exception_to_response
        order = self.orders[name] = []

        def convert(get_response):
            inner = real(get_response)
            target = getattr(get_response, "__self__", get_response)
            label = "view (after resolve, hooks)" if target is handler else type(target).__name__
            order.append(label)
            return self.timed("incl " + label, inner)

        handler = handler_class.__new__(handler_class)
        base.BaseHandler.__init__(handler)
        base.convert_exception_to_response = convert
        try:
            handler.load_middleware()
        finally:
            base.convert_exception_to_response = real
        handler.resolve_request = self.timed("URL resolution", handler.resolve_request)
        handler._view_middleware = [
            self.timed(f"{type(hook.__self__).__name__}.process_view", hook)
            for hook in handler._view_middleware
        ]
        return handler

    def exclusive(self, name: str, sample: dict[str, float], total: float) -> dict[str, float]:
        """Each layer's own CPU ms from the inclusive ones; the WSGI handler's remainder."""
        out, inner = {}, 0.0
        for label in self.orders[name]:
            incl = sample.get("incl " + label, 0.0)
            out[label] = incl - inner
            inner = incl
        out["view (after resolve, hooks)"] -= sample.get("URL resolution", 0.0) + sum(
            v for k, v in sample.items() if k.endswith(".process_view")
        )
        out.update({k: v for k, v in sample.items() if not k.startswith("incl ") and k != CALLS})
        # search_cpu's profiled calls (selectors, encoder, index...) inside search_products,
        # outermost only, and what is left: the services' own Python (ranking, fusion, paging).
        profiled = sample.get(CALLS, 0.0)
        searched = sample.get("  in view: search_products", 0.0)
        out["    search_products: search_cpu's profiled calls"] = profiled
        out["    search_products: the rest (services' Python)"] = searched - profiled
        out["WSGIHandler (request, signals, headers, close)"] = total - inner
        return out


CALLS = "profiled calls"


def install_profiled_calls(layers: Layers) -> None:
    """bench.search_cpu's PROFILED calls (what search_products spends in selectors, snapshot,
    keyword engine, encoder, index), summed into CALLS when not inside another of them."""
    import importlib

    from bench.search_cpu import PROFILED

    depth = [0]

    def wrap(fn):
        def wrapped(*args, **kwargs):
            if depth[0] or layers.current is None:
                return fn(*args, **kwargs)
            depth[0] += 1
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                ms = (time.process_time() - start) * 1000
                layers.current[CALLS] = layers.current.get(CALLS, 0.0) + ms

        return wrapped

    for module_name, names in PROFILED.items():
        if module_name == "search.views":  # outside search_products: timed in VIEW_CALLS
            continue
        try:
            owner = importlib.import_module(module_name)
        except ImportError:  # a class: module.Class
            parent, _, cls = module_name.rpartition(".")
            owner = getattr(importlib.import_module(parent), cls)
        for name in names:
            if hasattr(owner, name):
                setattr(owner, name, wrap(getattr(owner, name)))


def install_view_calls(layers: Layers) -> None:
    import importlib

    for module_name, names in VIEW_CALLS.items():
        module = importlib.import_module(module_name)
        for name in names:
            if hasattr(module, name):  # the view's helpers move; time those it has
                setattr(module, name, layers.timed(f"  in view: {name}", getattr(module, name)))


def handlers(before: bool, client: bool, layers: Layers) -> dict:
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import Client
    from django.test.utils import override_settings

    out = {"now": WSGIHandler()}
    if before:
        with override_settings(MIDDLEWARE=BEFORE):
            out["before"] = WSGIHandler()
    if client:  # what bench.search_cpu's numbers include beside the server's work
        out["django.test.Client"] = Client(HTTP_HOST="127.0.0.1")
    out["layers"] = layers.build(WSGIHandler, "layers")
    if before:
        with override_settings(MIDDLEWARE=BEFORE):
            out["layers before"] = layers.build(WSGIHandler, "layers before")
    return out


def run_rounds(handlers_: dict, layers: Layers, queries: list[str], rounds: int):
    cpu = defaultdict(list)
    per_layer = defaultdict(lambda: defaultdict(float))  # column -> label -> CPU ms summed
    names = list(handlers_)
    rng = random.Random(5)
    it = iter(queries)
    for _ in range(rounds):
        rng.shuffle(names)
        for name in names:
            query = next(it)
            for phase in ("unique", "repeated (page cache hit)"):
                layers.current = {} if name in layers.orders else None
                with code_before() if "before" in name else contextlib.nullcontext():
                    start = time.process_time()
                    status, headers, _body = serve(handlers_[name], "/search", {"q": query})
                    ms = (time.process_time() - start) * 1000
                assert status.startswith("200"), status
                assert (headers.get("X-Meepo-Cache") == "hit") == (phase != "unique"), headers
                cpu[(name, phase)].append(ms)
                if layers.current is not None:
                    column = f"{phase.split()[0]}, {name.removeprefix('layers').strip() or 'now'}"
                    for label, v in layers.exclusive(name, layers.current, ms).items():
                        per_layer[column][label] += v / rounds
    layers.current = None
    return cpu, per_layer


def main() -> None:
    args = parse_args()
    from bench.search_cpu import setup

    info = setup(args.products, quantize=True)
    from django.conf import settings

    from bench.search import unique_queries

    settings.MEEPO_SEARCH_PAGE_CACHE_SECONDS = 60  # production's default
    layers = Layers()
    hs = handlers(args.before, args.client, layers)
    install_view_calls(layers)
    install_profiled_calls(layers)
    queries = unique_queries(len(hs) * (args.rounds + 10), seed=23)
    for name, handler in hs.items():  # warm: model, index, database pages, templates
        for q in queries[-10 * (1 + list(hs).index(name)) :][:10]:
            serve(handler, "/search", {"q": q})
    cpu, per_layer = run_rounds(hs, layers, queries, args.rounds)
    rows = [
        {"handler": name, "request": phase, "mean CPU ms": round(statistics.fmean(v), 3),
         "median": round(statistics.median(v), 3)}
        for (name, phase), v in sorted(cpu.items())
    ]  # fmt: skip
    labels = {label: None for column in sorted(per_layer) for label in per_layer[column]}
    layer_rows = [
        {"layer (mean CPU ms)": label}
        | {c: round(per_layer[c][label], 3) if label in per_layer[c] else "" for c in sorted(per_layer)}
        for label in labels
    ]  # fmt: skip
    print(f"request path CPU bench: {args.products} products, catalogue {info}")
    print_table(rows)
    print_table(layer_rows)
    emit_json({"bench": "request_path", "products": args.products, "middleware": settings.MIDDLEWARE, "rows": rows, "layers": layer_rows, "machine": machine()}, args.json)  # fmt: skip


if __name__ == "__main__":
    main()
