"""The polite fetcher against a real demo shop on 127.0.0.1: what arrives on the wire."""

import itertools
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from pipeline.exceptions import FetchError
from pipeline.http import (
    DeadlineExceeded,
    Fetcher,
    HostBlocked,
    ResponseTooLarge,
    RobotsDisallowed,
    RobotsUnavailable,
    UnsafeURL,
    WrongContentType,
)

# The fetcher keeps each host's politeness state in catalog.models.Host.
pytestmark = pytest.mark.django_db


@pytest.fixture
def polite(fast_crawl):
    fast_crawl.MEEPO_CRAWL_JITTER = 0.0
    fast_crawl.MEEPO_BACKOFF_BASE = 0.1
    fast_crawl.MEEPO_MAX_PARK_SECONDS = 10
    return fast_crawl


def _gaps(shop, prefix=""):
    times = [r.time for r in shop.requests if r.path.startswith(prefix)]
    return [b - a for a, b in itertools.pairwise(times)]


def _paths(shop):
    return [r.path for r in shop.requests]


def test_every_request_carries_contact_user_agent_and_from(polite, shopify_shop):
    polite.MEEPO_BOT_NAME = "MeepoBot"
    with Fetcher() as f:
        f.get(shopify_shop.base_url + "/products.json", kind="api")
    assert _paths(shopify_shop) == ["/robots.txt", "/products.json"]
    for rec in shopify_shop.requests:
        assert rec.header("User-Agent").startswith("MeepoBot/")
        assert "(+https://meepo.example/bot; bot@meepo.example)" in rec.header("User-Agent")
        assert rec.header("From") == "bot@meepo.example"


def test_min_gap_between_requests_to_a_host(polite, shopify_shop):
    with Fetcher(delay=0.3) as f:
        for _ in range(4):
            f.get(shopify_shop.base_url + "/products.json", kind="api")
    gaps = _gaps(shopify_shop)
    assert len(gaps) == 4  # robots.txt + 4 pages
    assert min(gaps) >= 0.3


def test_jitter_only_adds_to_the_gap(polite, shopify_shop):
    polite.MEEPO_CRAWL_JITTER = 0.5
    with Fetcher(delay=0.2) as f:
        for _ in range(6):
            f.get(shopify_shop.base_url + "/sitemap.xml", kind="api")
    gaps = _gaps(shopify_shop)
    assert min(gaps) >= 0.2
    assert max(gaps) < 0.2 * 1.5 + 0.15
    assert len({round(g, 2) for g in gaps}) > 1  # it does vary


def test_page_and_api_defaults_come_from_settings(polite, shopify_shop):
    polite.MEEPO_CRAWL_DELAY = 0.4
    polite.MEEPO_API_DELAY = 0.1
    url = shopify_shop.base_url
    with Fetcher() as f:
        f.get(url + "/products.json", kind="api")
        f.get(url + "/products.json", kind="api")
        f.get(url + "/", kind="page")
    gaps = _gaps(shopify_shop)
    assert 0.1 <= gaps[1] < 0.35
    assert gaps[2] >= 0.4


def test_robots_crawl_delay_for_our_token_slows_us_down(polite, shopify_shop):
    shopify_shop.set_robots(
        "User-agent: *\nCrawl-delay: 5\n\nUser-agent: MeepoBot\nCrawl-delay: 0.4\n"
    )
    with Fetcher(delay=0.05) as f:
        for _ in range(3):
            f.get(shopify_shop.base_url + "/sitemap.xml", kind="api")
    gaps = _gaps(shopify_shop)
    assert min(gaps) >= 0.4
    assert max(gaps) < 2  # the * group's 5 s is not ours: matched on our token only


def test_robots_crawl_delay_never_speeds_us_up(polite, shopify_shop):
    shopify_shop.set_robots("User-agent: MeepoBot\nCrawl-delay: 0.05\n")
    with Fetcher(delay=0.35) as f:
        for _ in range(3):
            f.get(shopify_shop.base_url + "/sitemap.xml", kind="api")
    assert min(_gaps(shopify_shop)) >= 0.35


def test_robots_request_rate_becomes_a_gap(polite, shopify_shop):
    shopify_shop.set_robots("User-agent: MeepoBot\nRequest-rate: 3/1s\n")
    with Fetcher(delay=0.0) as f:
        for _ in range(3):
            f.get(shopify_shop.base_url + "/sitemap.xml", kind="api")
    assert min(_gaps(shopify_shop)) >= 1 / 3


def test_robots_disallow_for_our_token_is_obeyed(polite, shopify_shop):
    shopify_shop.set_robots(
        "User-agent: OtherBot\nDisallow: /\n\nUser-agent: MeepoBot\nDisallow: /products\n"
    )
    with Fetcher() as f:
        with pytest.raises(RobotsDisallowed):
            f.get(shopify_shop.base_url + "/products.json", kind="api")
        f.get(shopify_shop.base_url + "/sitemap.xml", kind="api")
    assert _paths(shopify_shop) == ["/robots.txt", "/sitemap.xml"]


@pytest.mark.parametrize("status", [404, 410, 401])
def test_robots_4xx_allows_everything(polite, shopify_shop, status):
    shopify_shop.set_robots("User-agent: *\nDisallow: /\n", status=status)
    with Fetcher() as f:
        f.get(shopify_shop.base_url + "/products.json", kind="api")
    assert _paths(shopify_shop)[-1] == "/products.json"


@pytest.mark.parametrize("status", [500, 503])
def test_robots_5xx_disallows_everything(polite, shopify_shop, status):
    polite.MEEPO_MAX_RETRIES = 0
    shopify_shop.set_robots("User-agent: *\nAllow: /\n", status=status)
    with Fetcher() as f:
        for _ in range(2):
            with pytest.raises(RobotsUnavailable, match="retry later"):
                f.get(shopify_shop.base_url + "/products.json", kind="api")
    assert _paths(shopify_shop) == ["/robots.txt"]  # cached: not asked again at once


def test_robots_unreachable_disallows_everything(polite, make_shop):
    shop = make_shop()
    url = shop.base_url
    shop.stop()
    polite.MEEPO_MAX_RETRIES = 0
    with Fetcher() as f, pytest.raises(RobotsUnavailable):
        f.get(url + "/products.json", kind="api")


def test_every_redirect_hop_goes_through_robots_and_the_delay(polite, shopify_shop):
    shopify_shop.set_robots("User-agent: MeepoBot\nDisallow: /secret\n")
    shopify_shop.add_fault("/old", "redirect", location="/sitemap.xml", status=301)
    shopify_shop.add_fault("/sneaky", "redirect", location="/secret")
    with Fetcher(delay=0.3) as f:
        result = f.get(shopify_shop.base_url + "/old", kind="api")
        assert result.url.endswith("/sitemap.xml")
        with pytest.raises(RobotsDisallowed):
            f.get(shopify_shop.base_url + "/sneaky", kind="api")
    assert "/secret" not in _paths(shopify_shop)
    assert min(_gaps(shopify_shop)) >= 0.3


def test_redirect_loop_is_detected(polite, shopify_shop):
    shopify_shop.add_fault("/a", "redirect", location="/b")
    shopify_shop.add_fault("/b", "redirect", location="{base}/a")
    with Fetcher() as f, pytest.raises(FetchError, match="redirect loop"):
        f.get(shopify_shop.base_url + "/a")
    assert _paths(shopify_shop).count("/a") == 1


def test_redirect_to_non_http_scheme_is_refused(polite, shopify_shop):
    shopify_shop.add_fault("/go", "redirect", location="file:///etc/passwd")
    with Fetcher() as f, pytest.raises(UnsafeURL, match="scheme"):
        f.get(shopify_shop.base_url + "/go")


def test_private_and_loopback_hosts_are_refused_outside_tests(polite, shopify_shop):
    polite.MEEPO_ALLOWED_LOOPBACK = []
    with Fetcher() as f:
        for url in (
            shopify_shop.base_url + "/",
            "http://10.1.2.3/x",
            "http://169.254.169.254/latest",
        ):
            with pytest.raises(UnsafeURL, match="non-public"):
                f.get(url)
    assert shopify_shop.requests == []


def test_allowed_loopback_never_opens_private_or_link_local_addresses(polite, shopify_shop):
    """The test setting (127.0.0.1:*) lets the fixture shop through and nothing else."""
    assert polite.MEEPO_ALLOWED_LOOPBACK == ["127.0.0.1:*"]
    with Fetcher() as f:
        assert f.get(shopify_shop.base_url + "/products.json", kind="api").status == 200
        for url in (
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/x.jpg",
            "http://192.168.1.1/",
            "http://[fe80::1]/",
            f"http://0.0.0.0:{shopify_shop.port}/",
            f"http://127.0.0.2:{shopify_shop.port}/",
        ):
            with pytest.raises(UnsafeURL, match="non-public"):
                f.get(url, kind="image")


def test_loopback_is_allowed_only_on_the_listed_port(polite, shopify_shop, make_shop):
    other = make_shop("shopify", products=1)
    with Fetcher(allowed_loopback=[f"127.0.0.1:{shopify_shop.port}"]) as f:
        assert f.get(shopify_shop.base_url + "/products.json", kind="api").status == 200
        with pytest.raises(UnsafeURL, match=f"non-public address 127.0.0.1 port {other.port}"):
            f.get(other.base_url + "/products.json", kind="api")
    assert other.requests == []


@pytest.mark.parametrize(
    "entry", ["10.0.0.1:*", "169.254.169.254:80", "0.0.0.0:*", "example.com:80", "127.0.0.1"]
)
def test_allowed_loopback_accepts_only_loopback_host_port_pairs(entry):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="MEEPO_ALLOWED_LOOPBACK"):
        Fetcher(allowed_loopback=[entry])


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("169.254.169.254", False),
        ("fd00:ec2::254", False),  # AWS's IPv6 metadata address
        ("::ffff:169.254.169.254", False),
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("2002:a9fe:a9fe::1", False),  # 6to4 of 169.254.169.254
        ("100.64.0.1", False),  # carrier-grade NAT
        ("224.0.0.1", False),
        ("127.0.0.1", False),
    ],
)
def test_only_public_addresses_pass_without_an_allow_list(address, public):
    import ipaddress

    from pipeline.http.safety import AddressPolicy

    assert AddressPolicy().allows(ipaddress.ip_address(address), 80) is public


def test_dns_rebinding_to_a_private_address_is_refused_at_connect(polite, shopify_shop, monkeypatch):  # fmt: skip
    """The check's DNS answer is public, the connection's is 127.0.0.1: nothing may be sent."""
    import socket as real_socket

    from pipeline.http import safety

    class FirstAnswerPublic:  # DNS is outside the machine: the one thing this test stands in for
        def __getattr__(self, name):
            return getattr(real_socket, name)

        @staticmethod
        def getaddrinfo(host, port, *args, **kwargs):
            return [(real_socket.AF_INET, real_socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]  # fmt: skip

    polite.MEEPO_ALLOWED_LOOPBACK = []
    monkeypatch.setattr(safety, "socket", FirstAnswerPublic())
    url = shopify_shop.base_url.replace("127.0.0.1", "localhost") + "/products.json"
    with Fetcher() as f, pytest.raises(UnsafeURL, match=r"reached non-public address 127\.0\.0\.1"):
        f.get(url, kind="api")
    assert shopify_shop.requests == []  # not even robots.txt


@pytest.mark.parametrize("value", ["1", "0.6", "date"])
def test_429_retry_after_parks_the_host(polite, shopify_shop, value):
    expected = 0.6 if value == "0.6" else 1.0
    back_at = None  # a date: the retry comes at that moment, however late the 429 was answered
    if value == "date":
        when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        value = format_datetime(when, usegmt=True)
        back_at = time.monotonic() + (when - datetime.now(UTC)).total_seconds() - 0.05
    shopify_shop.add_fault("/products.json", "retry_after", value=value, times=1)
    with Fetcher() as f:
        result = f.get(shopify_shop.base_url + "/products.json", kind="api")
    assert result.status == 200
    statuses = [(r.path, r.status) for r in shopify_shop.requests]
    assert statuses[-2:] == [("/products.json", 429), ("/products.json", 200)]
    if back_at is None:
        assert _gaps(shopify_shop)[-1] >= expected
    else:
        assert shopify_shop.requests[-1].time >= back_at


def test_503_without_retry_after_backs_off_exponentially(polite, shopify_shop):
    polite.MEEPO_BACKOFF_BASE = 0.15
    shopify_shop.add_fault("/products.json", "status", status=503, times=2)
    with Fetcher() as f:
        assert f.get(shopify_shop.base_url + "/products.json", kind="api").status == 200
    gaps = _gaps(shopify_shop, "/products.json")
    assert gaps[0] >= 0.15
    assert gaps[1] >= 0.3


def test_long_retry_after_stops_the_host_for_this_run(polite, shopify_shop):
    shopify_shop.add_fault("/products.json", "retry_after", value="3600")
    with Fetcher() as f:
        with pytest.raises(HostBlocked, match="next run"):
            f.get(shopify_shop.base_url + "/products.json", kind="api")
        with pytest.raises(HostBlocked):
            f.get(shopify_shop.base_url + "/sitemap.xml", kind="api")
    assert _paths(shopify_shop) == ["/robots.txt", "/products.json"]


def test_circuit_breaker_opens_after_repeated_failures(polite, shopify_shop):
    polite.MEEPO_CIRCUIT_BREAKER_FAILURES = 3
    polite.MEEPO_BACKOFF_BASE = 0.01
    shopify_shop.add_fault("/p*", "status", status=500)
    with Fetcher() as f:
        with pytest.raises(HostBlocked, match="circuit open"):
            f.get(shopify_shop.base_url + "/products.json", kind="api")
        with pytest.raises(HostBlocked):
            f.get(shopify_shop.base_url + "/sitemap.xml", kind="api")
    assert len(shopify_shop.requests) == 4  # robots + 3 attempts, then nothing


@pytest.mark.parametrize("status", [401, 403])
def test_401_403_stop_crawling_the_host(polite, shopify_shop, status):
    shopify_shop.add_fault("/products.json", "status", status=status)
    with Fetcher() as f:
        with pytest.raises(HostBlocked, match=str(status)):
            f.get(shopify_shop.base_url + "/products.json", kind="api")
        with pytest.raises(HostBlocked):
            f.get(shopify_shop.base_url + "/sitemap.xml", kind="api")
    assert _paths(shopify_shop) == ["/robots.txt", "/products.json"]


def test_compression_asked_for_text_and_not_for_images(polite, shopify_shop):
    product = shopify_shop.products[0]
    with Fetcher() as f:
        page = f.get(shopify_shop.product_url(product.id))
        image = f.get(shopify_shop.image_url(product.id), kind="image")
    assert product.title in page.text()
    assert page.wire_bytes < len(page.body)  # it came compressed
    assert image.body[:3] == b"\xff\xd8\xff"
    encodings = {r.path.split("?")[0]: r.header("Accept-Encoding") for r in shopify_shop.requests}
    assert encodings[f"/products/{product.handle}"] == "gzip, br"
    assert encodings[shopify_shop.image_path(product.id)] == "identity"


@pytest.mark.parametrize("length", [True, False])
def test_huge_response_is_cut_off_at_the_cap(polite, shopify_shop, length):
    polite.MEEPO_MAX_RESPONSE_BYTES = 1_000_000
    shopify_shop.add_fault("/", "huge", size=50_000_000, length=length)
    start = time.monotonic()
    with Fetcher() as f, pytest.raises(ResponseTooLarge, match="cap"):
        f.get(shopify_shop.base_url + "/")
    assert time.monotonic() - start < 5
    assert shopify_shop.requests[-1].bytes_sent < 20_000_000


def test_gzip_bomb_is_capped_on_decoded_bytes(polite, shopify_shop):
    polite.MEEPO_MAX_RESPONSE_BYTES = 2_000_000
    shopify_shop.add_fault("/", "gzip_bomb", size=100 * 2**20)
    with Fetcher() as f, pytest.raises(ResponseTooLarge, match="decoded"):
        f.get(shopify_shop.base_url + "/")


def test_slow_drip_server_hits_the_total_deadline(polite, shopify_shop):
    polite.MEEPO_REQUEST_TIMEOUT = 1.0
    shopify_shop.add_fault(
        "/", "drip", chunk=10, interval=0.2
    )  # each read is quick, the whole is not
    start = time.monotonic()
    with Fetcher() as f, pytest.raises(DeadlineExceeded):
        f.get(shopify_shop.base_url + "/")
    assert time.monotonic() - start < 2.5


def test_headers_trickled_a_line_at_a_time_hit_the_total_deadline(polite, shopify_shop):
    polite.MEEPO_REQUEST_TIMEOUT = 1.0
    shopify_shop.add_fault("/", "drip_headers", interval=0.2, times=1)  # no read ever waits long
    start = time.monotonic()
    with Fetcher() as f, pytest.raises(DeadlineExceeded, match=r"within 1\.0s"):
        f.get(shopify_shop.base_url + "/")
    assert time.monotonic() - start < 2.5
    with Fetcher() as f:  # the shop itself is fine: the next request is answered
        assert f.get(shopify_shop.base_url + "/").status == 200


def test_a_kept_alive_connection_that_starts_trickling_still_hits_the_deadline(polite, shopify_shop):  # fmt: skip
    """The watchdog must get the socket of a reused connection too, not only of a new one."""
    polite.MEEPO_REQUEST_TIMEOUT = 1.0
    with Fetcher() as f:
        assert f.get(shopify_shop.base_url + "/").status == 200  # opens the kept-alive connection
        shopify_shop.add_fault("/", "drip_headers", interval=0.2, times=1)
        start = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            f.get(shopify_shop.base_url + "/")
        assert time.monotonic() - start < 2.5
        assert f.get(shopify_shop.base_url + "/").status == 200  # the pool recovers


def test_wrong_content_type_is_refused_before_reading(polite, shopify_shop):
    shopify_shop.add_fault("/products.json", "wrong_type")
    with Fetcher() as f, pytest.raises(WrongContentType, match="text/html"):
        f.get(
            shopify_shop.base_url + "/products.json", kind="api", accept_types=["application/json"]
        )


def test_conditional_request_gets_304(polite, shopify_shop):
    with Fetcher() as f:
        first = f.get(shopify_shop.base_url + "/products.json", kind="api")
        again = f.get(
            shopify_shop.base_url + "/products.json",
            kind="api",
            etag=first.etag,
            last_modified=first.last_modified,
        )
    assert again.not_modified
    assert again.body == b""
    assert shopify_shop.requests[-1].header("If-None-Match") == first.etag
    assert f.stats.not_modified == 1


def test_autothrottle_slows_down_for_a_slow_server(polite, shopify_shop):
    shopify_shop.add_fault("/sitemap.xml", "delay", seconds=0.3)
    with Fetcher(delay=0.0) as f:
        for _ in range(3):
            f.get(shopify_shop.base_url + "/sitemap.xml", kind="api")
    gaps = _gaps(shopify_shop, "/sitemap.xml")
    # target concurrency 0.5: wait about twice the latency after each answer
    assert min(gaps) >= 0.3 + 0.5


def test_one_request_at_a_time_per_host(polite, shopify_shop):
    shopify_shop.add_fault("/sitemap.xml", "delay", seconds=0.2)
    with Fetcher(delay=0.0) as f:
        for _ in range(3):
            f.get(shopify_shop.base_url + "/sitemap.xml", kind="sitemap")
    recs = shopify_shop.requests
    assert all(b.time >= a.finished > 0 for a, b in itertools.pairwise(recs))


def test_robots_visit_time_outside_now_stops_the_host(polite, shopify_shop):
    from datetime import UTC, datetime, timedelta

    later = datetime.now(UTC) + timedelta(hours=3)
    end = later + timedelta(hours=1)
    shopify_shop.set_robots(f"User-agent: MeepoBot\nVisit-time: {later:%H%M}-{end:%H%M}\n")
    with Fetcher() as f, pytest.raises(HostBlocked, match="Visit-time"):
        f.get(shopify_shop.base_url + "/products.json", kind="api")
    assert _paths(shopify_shop) == ["/robots.txt"]
