"""Hostile store text: lone surrogates, control and bidi characters are cleaned at ingest.

A lone surrogate in a JSON-LD string (`"\\ud800"`) used to raise UnicodeEncodeError on the
database write and end the scrape of every store; bidi overrides made "gnp.exe" display as
"exe.png". Both are cleaned once, before anything is written (pipeline/platforms/sanitize.py).
"""

import pytest

from catalog.models import CrawlRun, Product
from pipeline.platforms.sanitize import clean_text
from pipeline.scrape import add_store
from tests.hostile.store_pages import product_json, scrape_one, serve_product_page

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def crawl(fast_crawl):
    fast_crawl.MEEPO_MAX_RETRIES = 0
    return fast_crawl


def test_lone_surrogate_in_json_ld_is_replaced_and_every_store_is_crawled(crawl, make_shop):
    hostile = make_shop("schema_org", products=3)
    other = make_shop("schema_org", products=2, seed=5)
    bad = hostile.products[0]
    text = product_json(hostile, bad, name="Mug XX", description="Hand made XX", brand="XX")
    serve_product_page(hostile, bad, raw_json=text.replace("XX", "\\ud800"))
    add_store(other.base_url, crawl_delay=0.0, name="zz other store")  # crawled after

    report, whole = scrape_one(hostile, name="aa hostile store")

    assert report.status in (CrawlRun.Status.SUCCEEDED, CrawlRun.Status.PARTIAL), report.message
    stored = Product.objects.get(url=hostile.product_url(bad.id))
    assert (stored.title, stored.description, stored.brand) == (
        "Mug \ufffd",
        "Hand made \ufffd",
        "\ufffd",
    )
    assert sorted((s.store == report.store, s.created) for s in whole.stores) == [
        (False, 2),
        (True, 3),
    ]
    assert CrawlRun.objects.filter(status=CrawlRun.Status.RUNNING).count() == 0


def test_bidi_overrides_and_controls_are_stripped_on_ingest(crawl, make_shop):
    shop = make_shop("schema_org", products=2)
    bad = shop.products[0]
    serve_product_page(
        shop,
        bad,
        name="invoice\u202egnp.exe",
        description="safe \u2066text\u2069 here\x00\x07 and \u05e9\u05dc\u05d5\u05dd\u200f!",
        brand="\u202dBrand\u202c",
        sku="\u200fH-" + str(bad.id),
    )

    report, _ = scrape_one(shop)

    assert report.created == 2
    stored = Product.objects.get(title__startswith="invoice")
    assert stored.title == "invoicegnp.exe"
    # Direction *marks* stay in prose (mixed Hebrew text needs them); overrides never do.
    assert stored.description == "safe text here and \u05e9\u05dc\u05d5\u05dd\u200f!"
    assert stored.brand == "Brand"
    assert "\u200f" not in stored.sku


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a\ud800b", "a\ufffdb"),
        ("\udfff", "\ufffd"),
        ("x\u202ey\u2066z\u2069", "xyz"),
        ("tab\tnew\nline\x00\x1b[31m", "tab\tnew\nline[31m"),
        ("\u0085c1\u009b", "c1"),
        ("plain ascii", "plain ascii"),
        ("\u05e9\u200f", "\u05e9\u200f"),
    ],
)
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean
    assert clean_text(raw).encode("utf-8")  # always storable


def test_identifiers_lose_direction_marks_too():
    assert clean_text("\u200eSKU\u200f-1\u061c", strict=True) == "SKU-1"
