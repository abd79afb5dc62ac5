"""Hostile sitemaps: fan-out, duplicates and millions of URLs cost a bounded amount.

The memory test crawls a store whose sitemap index lists 20 gzipped children of 50,000 long
URLs each (1,000,000 URLs) in a subprocess and reads its peak RSS (VmHWM): the crawler
streams, deduplicates on the fly and stops at MEEPO_MAX_URLS_PER_STORE, so the peak stays under
a ceiling that holding the URLs in lists (what it did before) far exceeds.
"""

import gzip
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from catalog.models import CrawlRun, Product
from pipeline.scrape import add_store, scrape_stores

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)

CHILDREN = 20
PER_CHILD = 50_000
PAD = "x" * 120  # long URLs: what made the old crawler's lists cost gigabytes
CEILING_MB = 260  # peak RSS of the crawling process; Django + lxml + requests alone is ~110


class _MillionUrlStore(ThreadingHTTPServer):
    """robots.txt (pages disallowed, so no page is fetched), an index, 20 gzipped children."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.base = f"http://127.0.0.1:{self.server_address[1]}"
        self.paths: list[str] = []
        self._children: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def child(self, n: int) -> bytes:
        with self._lock:
            if n not in self._children:
                urls = "".join(
                    f"<url><loc>{self.base}/p/{n}-{i}-{PAD}</loc><lastmod>2026-01-01</lastmod></url>"
                    for i in range(PER_CHILD)
                )
                body = (
                    f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
                )
                self._children[n] = gzip.compress(body.encode(), compresslevel=1)
            return self._children[n]


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        server.paths.append(self.path)
        if self.path == "/robots.txt":
            body, ctype = (
                f"User-agent: *\nDisallow: /p/\nSitemap: {server.base}/sitemap.xml\n".encode(),
                "text/plain",
            )
        elif self.path == "/sitemap.xml":
            children = "".join(
                f"<sitemap><loc>{server.base}/s/{n}.xml.gz</loc></sitemap>" for n in range(CHILDREN)
            )
            body = f"<sitemapindex>{children}</sitemapindex>".encode()
            ctype = "application/xml"
        elif self.path.startswith("/s/"):
            body, ctype = server.child(int(self.path[3:].split(".")[0])), "application/gzip"
        else:
            body, ctype = b"not here", "text/plain"
        self.send_response(200 if ctype != "text/plain" or "robots" in self.path else 404)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


_CRAWL = """
import json, resource, sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from catalog.models import Store
from pipeline.http import Fetcher
from pipeline.platforms import schema_org
from pipeline.platforms.context import CrawlContext

def peak_mb():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec, so a child of a big pytest
    # process would report its parent's size. VmHWM belongs to this process's own memory map.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

base = sys.argv[1]
ready = peak_mb()
store = Store(name="million", slug="million", base_url=base, platform="schema_org")
pages, reasons = 0, []
with Fetcher(delay=0.0) as fetcher:
    for listing in schema_org.iter_listings(CrawlContext(fetcher, store)):
        if listing.url.startswith(base + "/p/"):
            pages += 1
        else:
            reasons += [f.reason for f in listing.failures]
print(json.dumps({"pages": pages, "reasons": reasons, "ready_mb": ready, "peak_mb": peak_mb()}))
"""


def test_a_million_url_sitemap_is_streamed_capped_and_costs_bounded_memory(tmp_path):
    server = _MillionUrlStore()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "meepo.settings",
        "MEEPO_SECRET_KEY": "test",
        "MEEPO_ALLOWED_HOSTS": "localhost",
        "MEEPO_DATA_DIR": str(tmp_path),
        "MEEPO_ALLOWED_LOOPBACK": f"127.0.0.1:{server.server_address[1]}",
        "MEEPO_CRAWL_DELAY": "0",
        "MEEPO_API_DELAY": "0",
        "MEEPO_CRAWL_JITTER": "0",
        "MEEPO_LOG_LEVEL": "ERROR",
        "MEEPO_MAX_URLS_PER_STORE": "60000",
    }
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CRAWL, server.base],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["pages"] == 60_000  # every one refused by robots.txt without a request
    assert any("MEEPO_MAX_URLS_PER_STORE" in r for r in result["reasons"])
    # The cap stops the walk: the third child sitemap is never asked for.
    assert [p for p in server.paths if p.startswith("/s/")] == ["/s/0.xml.gz", "/s/1.xml.gz"]
    assert not any(p.startswith("/p/") for p in server.paths)
    assert result["peak_mb"] < CEILING_MB, result


# --- the same bounds through a whole scrape -------------------------------------------------


@pytest.fixture
def crawl(fast_crawl):
    fast_crawl.MEEPO_MAX_RETRIES = 0
    return fast_crawl


def _serve_xml(shop, path, xml: str):
    shop.add_fault(path, "wrong_type", content_type="application/xml", body=xml.encode())


def _urlset(urls):
    return "<urlset>" + "".join(f"<url><loc>{u}</loc></url>" for u in urls) + "</urlset>"


def test_url_cap_stops_the_store_with_a_reason_and_deactivates_nothing(crawl, make_shop):
    shop = make_shop("schema_org", products=6)
    add_store(shop.base_url, crawl_delay=0.0)
    assert scrape_stores().stores[0].created == 6
    crawl.MEEPO_MAX_URLS_PER_STORE = 3
    shop.clear_requests()

    report = scrape_stores(force=True).stores[0]

    pages = [r.path for r in shop.requests if r.path.startswith("/p/")]
    assert len(pages) == 3
    assert report.status == CrawlRun.Status.PARTIAL
    assert any("MEEPO_MAX_URLS_PER_STORE" in e["reason"] for e in report.errors)
    assert report.deactivated == 0
    assert Product.objects.filter(is_active=True).count() == 6


def test_sitemap_index_fan_out_is_capped(crawl, make_shop):
    crawl.MEEPO_MAX_SITEMAPS_PER_STORE = 5
    shop = make_shop("schema_org", products=2)
    children = "".join(
        f"<sitemap><loc>{shop.base_url}/sitemap-products-{n}.xml</loc></sitemap>"
        for n in range(500)
    )
    _serve_xml(shop, "/sitemap.xml", f"<sitemapindex>{children}</sitemapindex>")
    add_store(shop.base_url, crawl_delay=0.0)
    shop.clear_requests()

    report = scrape_stores().stores[0]

    asked = [r.path for r in shop.requests if r.path.startswith("/sitemap")]
    assert len(asked) == 5  # the index and four children
    assert any("MEEPO_MAX_SITEMAPS_PER_STORE" in e["reason"] for e in report.errors)


def test_duplicate_urls_are_fetched_once(crawl, make_shop):
    shop = make_shop("schema_org", products=2)
    page = shop.product_url(shop.products[0].id)
    _serve_xml(shop, "/sitemap.xml", _urlset([page] * 5000 + [page + "#again"] * 10))
    add_store(shop.base_url, crawl_delay=0.0)
    shop.clear_requests()

    report = scrape_stores().stores[0]

    pages = [r.path for r in shop.requests if r.path.startswith("/p/")]
    assert pages == [page[len(shop.base_url) :]]  # one request, not 5,010
    assert report.created == 1


def test_sitemap_element_bomb_is_refused_and_the_store_finishes(crawl, make_shop):
    shop = make_shop("schema_org", products=2)
    bomb = "<urlset><url><loc>x</loc>" + "<a/>" * 1_100_000 + "</url></urlset>"
    shop.set_robots("User-agent: *\nSitemap: {base}/bomb.xml\nSitemap: {base}/sitemap.xml\n")
    _serve_xml(shop, "/bomb.xml", bomb)
    crawl.MEEPO_MAX_RESPONSE_BYTES = 20_000_000
    add_store(shop.base_url, crawl_delay=0.0)

    report = scrape_stores().stores[0]

    assert report.created == 2
    assert any("elements" in e["reason"] for e in report.errors)
