"""Platform parsers and normalisation on hand-written inputs (the odd cases real shops send)."""

import gzip
import json
from decimal import Decimal

import pytest

from pipeline.exceptions import FetchError
from pipeline.platforms import shopify, woocommerce
from pipeline.platforms.base import (
    absolute_url,
    normalize_availability,
    normalize_currency,
    parse_price,
    plain_text,
)
from pipeline.platforms.sitemaps import parse_sitemap
from pipeline.platforms.structured import extract_products

PAGE = "https://shop.example/products/mug"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12.50", Decimal("12.50")),
        (12.5, Decimal("12.50")),
        ("12,50", Decimal("12.50")),
        ("1.299,00", Decimal("1299.00")),
        ("1,299.00", Decimal("1299.00")),
        ("€ 19", Decimal("19.00")),
        ("1,299", Decimal("1299.00")),
        ("0", None),
        ("-5", None),
        ("NaN", None),
        ("free", None),
        (None, None),
        (True, None),
    ],
)
def test_parse_price(raw, expected):
    assert parse_price(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("eur", "EUR"),
        (" USD ", "USD"),
        ("€", "EUR"),
        ("$", "USD"),
        ("euro", "EUR"),
        ("QQQ", ""),
        ("", ""),
        (5, ""),
    ],
)
def test_normalize_currency(raw, expected):
    assert normalize_currency(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://schema.org/InStock", "in_stock"),
        ("http://schema.org/OutOfStock", "out_of_stock"),
        ("InStock", "in_stock"),
        ("schema:PreOrder", "preorder"),
        ("https://schema.org/BackOrder", "preorder"),
        ("SoldOut", "out_of_stock"),
        ("oos", "out_of_stock"),
        ("in stock", "in_stock"),
        (True, "in_stock"),
        ("Maybe", "unknown"),
        (None, "unknown"),
    ],
)
def test_normalize_availability(raw, expected):
    assert normalize_availability(raw) == expected


def test_absolute_url_resolves_relative_and_protocol_relative_and_drops_other_schemes():
    assert absolute_url("/img/a.jpg", PAGE) == "https://shop.example/img/a.jpg"
    assert absolute_url("//cdn.example/a.jpg", PAGE) == "https://cdn.example/a.jpg"
    assert absolute_url("javascript:alert(1)", PAGE) == ""
    assert absolute_url("data:image/png;base64,xx", PAGE) == ""


def test_plain_text_strips_markup_and_scripts():
    assert (
        plain_text("<p>Soft &amp; warm</p><script>x()</script><ul><li>A</li></ul>")
        == "Soft & warm\nA"
    )


def _page(*blocks, head=""):
    scripts = "".join(f'<script type="application/ld+json">{b}</script>' for b in blocks)
    return f"<html><head>{head}</head><body>{scripts}</body></html>".encode()


def test_json_ld_graph_with_woocommerce_price_specification():
    data = {
        "@context": "https://schema.org/",
        "@graph": [
            {"@type": "WebPage", "name": "x"},
            {
                "@type": "Product",
                "name": "Teal mug",
                "image": {"@type": "ImageObject", "url": "/m.jpg"},
                "brand": {"@type": "Brand", "name": "Nordhus"},
                "offers": [
                    {
                        "@type": "Offer",
                        "availability": "http://schema.org/InStock",
                        "priceSpecification": [
                            {"price": "9.00", "priceCurrency": "GBP"},
                            {
                                "price": "12.00",
                                "priceCurrency": "GBP",
                                "priceType": "https://schema.org/ListPrice",
                            },
                        ],
                    }
                ],
            },
        ],
    }
    (p,), notes = extract_products(_page(json.dumps(data)), PAGE)
    assert (p.title, p.price, p.currency, p.availability, p.brand) == (
        "Teal mug",
        Decimal("9.00"),
        "GBP",
        "in_stock",
        "Nordhus",
    )
    assert p.image_urls == ["https://shop.example/m.jpg"]
    assert notes == []


def test_product_group_takes_cheapest_available_variant():
    data = {
        "@type": ["ProductGroup"],
        "name": "Rug",
        "image": ["//cdn.example/r.jpg"],
        "hasVariant": [
            {
                "@type": "Product",
                "offers": {"price": "50", "priceCurrency": "EUR", "availability": "OutOfStock"},
            },
            {
                "@type": "Product",
                "offers": {"price": "80", "priceCurrency": "EUR", "availability": "InStock"},
            },
        ],
    }
    (p,), _ = extract_products(_page(json.dumps(data)), PAGE)
    assert (p.price, p.availability) == (Decimal("80.00"), "in_stock")
    assert p.image_urls == ["https://cdn.example/r.jpg"]


def test_aggregate_offer_uses_low_price():
    data = {
        "@type": "Product",
        "name": "Set",
        "offers": {
            "@type": "AggregateOffer",
            "lowPrice": "5.5",
            "highPrice": "9",
            "priceCurrency": "usd",
        },
    }
    (p,), _ = extract_products(_page(json.dumps(data)), PAGE)
    assert (p.price, p.currency) == (Decimal("5.50"), "USD")


def test_bad_json_ld_block_does_not_hide_the_good_one_and_cleanup_rescues_sloppy_ones():
    good = json.dumps(
        {"@type": "Product", "name": "Fork", "offers": {"price": 3, "priceCurrency": "EUR"}}
    )
    sloppy = '<!-- {"@type": "Product", "name": "Spoon", "offers": {"price": 4,},}; -->'
    (p,), notes = extract_products(_page('{"@type": "Product",, nope', good), PAGE)
    assert p.title == "Fork"
    assert notes == ["1 unreadable JSON-LD block(s) skipped"]
    (q,), _ = extract_products(_page(sloppy), PAGE)
    assert q.title == "Spoon"


def test_deeply_nested_json_ld_is_survived():
    deep = "[" * 5000 + "]" * 5000
    products, notes = extract_products(_page(deep), PAGE)
    assert products == []
    assert notes


def test_opengraph_fallback():
    head = (
        '<meta property="og:type" content="product"><meta property="og:title" content="Lamp">'
        '<meta property="og:image" content="/l.jpg"><meta property="product:price:amount" content="49,90">'
        '<meta property="product:price:currency" content="EUR"><meta property="product:availability" content="oos">'
    )
    (p,), _ = extract_products(_page(head=head), PAGE)
    assert (p.title, p.price, p.currency, p.availability) == (
        "Lamp",
        Decimal("49.90"),
        "EUR",
        "out_of_stock",
    )


def test_microdata_fallback():
    html = (
        b'<html><body><div itemscope itemtype="https://schema.org/Product"><h1 itemprop="name">Vase</h1>'
        b'<img itemprop="image" src="v.png"><div itemprop="offers" itemscope itemtype="https://schema.org/Offer">'
        b'<meta itemprop="price" content="19.00"><meta itemprop="priceCurrency" content="EUR">'
        b'<link itemprop="availability" href="https://schema.org/InStock"></div></div></body></html>'
    )
    (p,), _ = extract_products(html, PAGE)
    assert (p.title, p.price, p.availability) == ("Vase", Decimal("19.00"), "in_stock")
    assert p.image_urls == ["https://shop.example/products/v.png"]


def test_garbage_html_yields_nothing_without_raising():
    for body in (b"", b"\x00\xff\xfe", b"<html><body>Page not found</body></html>"):
        products, _ = extract_products(body, PAGE)
        assert products == []


def test_canonical_link_is_the_product_identity():
    head = '<link rel="canonical" href="/products/mug#top">'
    data = json.dumps({"@type": "Product", "name": "Mug"})
    (p,), _ = extract_products(_page(data, head=head), PAGE + "?utm_source=x")
    assert p.external_id == "https://shop.example/products/mug"


def test_shopify_product_parsing():
    item = {
        "id": 7,
        "title": "Fork",
        "handle": "fork",
        "body_html": "<p>Shiny</p>",
        "vendor": "Kobalt",
        "product_type": "Cutlery",
        "tags": "cutlery, steel",
        "variants": [{"price": "9.00", "available": False}, {"price": "11.00", "available": True}],
        "images": [{"src": "https://cdn.shopify.com/s/files/f.jpg?v=1", "position": 1}],
    }
    p = shopify.parse_product(item, "https://shop.example", "EUR")
    assert (p.external_id, p.url, p.price, p.availability) == (
        "7",
        "https://shop.example/products/fork",
        Decimal("11.00"),
        "in_stock",
    )
    assert p.tags == ["cutlery", "steel"]
    assert p.image_urls == ["https://cdn.shopify.com/s/files/f.jpg?v=1&width=640"]


def test_woocommerce_price_minor_units_and_srcset_choice():
    item = {
        "id": 3,
        "name": "Pillow",
        "permalink": "/product/pillow/",
        "is_in_stock": False,
        "is_on_backorder": True,
        "prices": {"price": "1105", "currency_code": "GBP", "currency_minor_unit": 2},
        "images": [
            {"src": "/full.jpg", "srcset": "/a-100.jpg 100w, /a-768.jpg 768w, /a-1024.jpg 1024w"}
        ],
    }
    p = woocommerce.parse_product(item, "https://wp.example")
    assert (p.price, p.currency, p.availability) == (Decimal("11.05"), "GBP", "preorder")
    assert p.image_urls == ["https://wp.example/a-768.jpg"]
    jpy = woocommerce.parse_product(
        {**item, "prices": {"price": "1500", "currency_code": "JPY", "currency_minor_unit": 0}},
        "https://wp.example",
    )
    assert jpy.price == Decimal("1500.00")


def test_sitemap_parsing_index_urlset_and_gzip():
    index = (
        b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<sitemap><loc>https://s.example/p.xml</loc></sitemap></sitemapindex>"
    )
    assert parse_sitemap(index).is_index
    urlset = (
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc> https://s.example/a </loc>'
        b"<lastmod>2026-01-02</lastmod></url><url><lastmod>x</lastmod></url></urlset>"
    )
    parsed = parse_sitemap(gzip.compress(urlset))
    assert [(e.loc, e.lastmod) for e in parsed.entries] == [("https://s.example/a", "2026-01-02")]


def test_sitemap_with_entities_or_gzip_bomb_is_refused():
    laughs = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><urlset>&a;</urlset>'
    with pytest.raises(FetchError, match="DOCTYPE"):
        parse_sitemap(laughs)
    bomb = gzip.compress(b" " * (60 * 1024 * 1024))
    with pytest.raises(FetchError, match="inflates"):
        parse_sitemap(bomb)


def test_http_charset_decodes_a_page_without_meta_charset():
    body = _page(json.dumps({"@type": "Product", "name": "Crème brûlée"}, ensure_ascii=False))
    (p,), _ = extract_products(body, PAGE, content_type="text/html; charset=utf-8")
    assert p.title == "Crème brûlée"


def test_main_product_comes_first_not_the_related_one():
    related = json.dumps({"@type": "Product", "name": "Other mug", "url": "/products/other"})
    main = json.dumps({"@type": "Product", "name": "Mug", "url": PAGE})
    (p,), _ = extract_products(_page(related, main), PAGE)
    assert p.title == "Mug"
