"""The demo shop is a real server that behaves like each platform and misbehaves on demand."""

import gzip
import io
import json
import time

import pytest
import requests
from PIL import Image

from demo.shop import DemoShop


def _get(shop, path, **headers):
    return requests.get(shop.base_url + path, headers=headers, timeout=5, allow_redirects=False)


def test_same_seed_gives_same_catalogue_and_new_products_leave_old_ones_alone():
    a = DemoShop(products=10, seed=3)
    b = DemoShop(products=5, seed=3)
    b.add_products(5)
    assert [p.title for p in a.products] == [p.title for p in b.products]
    assert DemoShop(products=10, seed=4).products[0].title != a.products[0].title


def test_default_catalogue_looks_like_a_home_goods_shop():
    products = DemoShop(products=60).products
    assert len(products) == 60
    assert any("cutlery" in p.tags for p in products)
    assert {p.availability for p in products} >= {"in_stock", "out_of_stock"}
    own = ("size_chart", "variant")  # colour variants add their own pictures
    assert all(1 <= len([i for i in p.images if i.kind not in own]) <= 3 for p in products)
    assert sum(any(i.kind == "size_chart" for i in p.images) for p in products) >= 5
    assert all(p.price > 0 for p in products)


def test_shopify_products_json_pages_and_shows_the_catalogue(make_shop):
    shop = make_shop("shopify", products=7)
    page1 = _get(shop, "/products.json?limit=5&page=1").json()["products"]
    page2 = _get(shop, "/products.json?limit=5&page=2").json()["products"]
    page3 = _get(shop, "/products.json?limit=5&page=3").json()["products"]
    assert [len(page1), len(page2), page3] == [5, 2, []]
    first = page1[0]
    assert first["title"] == shop.products[0].title
    assert first["variants"][0]["price"] == f"{shop.products[0].price:.2f}"
    assert first["images"][0]["src"].startswith(shop.base_url)


def test_woocommerce_store_api_pages_with_wp_headers(make_shop):
    shop = make_shop("woocommerce", products=7)
    r = _get(shop, "/wp-json/wc/store/v1/products?per_page=5&page=1")
    assert r.headers["X-WP-Total"] == "7"
    assert r.headers["X-WP-TotalPages"] == "2"
    assert 'rel="next"' in r.headers["Link"]
    item = r.json()[0]
    assert item["prices"]["currency_code"] == "USD"
    assert int(item["prices"]["price"]) == int(shop.products[0].price * 100)


@pytest.mark.parametrize("flavour", ["shopify", "woocommerce", "schema_org"])
def test_product_pages_carry_json_ld_or_fallback_markup(make_shop, flavour):
    shop = make_shop(flavour, products=10)
    for product in shop.products:
        html = _get(shop, shop.product_url(product.id)[len(shop.base_url) :]).text
        assert product.title in html
        assert "application/ld+json" in html or "itemscope" in html or "og:title" in html


def test_images_depict_the_product_colour(make_shop):
    shop = make_shop("shopify", products=3)
    product = shop.products[0]
    r = _get(shop, shop.image_path(product.id) + "?v=1&width=256")
    img = Image.open(io.BytesIO(r.content)).convert("RGB")
    assert img.width == 256
    assert "Content-Encoding" not in r.headers
    colours = img.getcolors(256 * 256)
    assert any(
        sum(abs(a - b) for a, b in zip(c, product.rgb, strict=True)) < 40 for _, c in colours
    )


def test_conditional_requests_get_304_and_change_after_update(make_shop):
    shop = make_shop("shopify", products=3)
    first = _get(shop, "/products.json")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert _get(shop, "/products.json", **{"If-None-Match": etag}).status_code == 304
    assert _get(shop, "/products.json", **{"If-Modified-Since": modified}).status_code == 304
    shop.update_product(shop.products[0].id, price=shop.products[0].price + 1)
    assert _get(shop, "/products.json", **{"If-None-Match": etag}).status_code == 200


def test_text_is_compressed_when_asked_and_images_never(make_shop):
    shop = make_shop("schema_org", products=2)
    r = _get(shop, "/sitemap.xml", **{"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip"
    raw = requests.get(
        shop.base_url + "/sitemap.xml", headers={"Accept-Encoding": "gzip"}, stream=True
    )
    assert gzip.decompress(raw.raw.read()).startswith(b"<?xml")
    img = _get(shop, shop.image_path(shop.products[0].id), **{"Accept-Encoding": "gzip, br"})
    assert "Content-Encoding" not in img.headers


def test_request_log_records_time_path_and_headers(make_shop):
    shop = make_shop("shopify", products=1)
    _get(shop, "/robots.txt", **{"User-Agent": "TestBot/1", "From": "a@b.c"})
    (rec,) = shop.requests
    assert rec.path == "/robots.txt"
    assert rec.header("User-Agent") == "TestBot/1"
    assert rec.header("from") == "a@b.c"
    assert rec.status == 200
    assert abs(rec.time - time.monotonic()) < 5


@pytest.mark.parametrize("value", ["3", "1.5", "Wed, 21 Oct 2026 07:28:00 GMT"])
def test_retry_after_fault_answers_429_then_recovers(make_shop, value):
    shop = make_shop("shopify", products=1)
    shop.add_fault("/products.json*", "retry_after", value=value, times=1)
    r = _get(shop, "/products.json")
    assert (r.status_code, r.headers["Retry-After"]) == (429, value)
    assert _get(shop, "/products.json").status_code == 200


def test_misbehaviour_switches(make_shop):
    shop = make_shop("schema_org", products=2)
    pid = shop.products[0].id
    shop.add_fault("/loop-a", "redirect", location="/loop-b")
    shop.add_fault("/loop-b", "redirect", location="{base}/loop-a")
    shop.add_fault("/ftp", "redirect", location="ftp://127.0.0.1/x")
    shop.add_fault(shop.image_path(pid), "bomb")
    shop.add_fault("/huge", "huge", size=3_000_000, content_type="text/html")
    shop.add_fault("/down", "status", status=503)
    assert _get(shop, "/loop-a").headers["Location"] == "/loop-b"
    assert _get(shop, "/ftp").headers["Location"].startswith("ftp://")
    bomb = _get(shop, shop.image_path(pid)).content
    assert bomb.startswith(b"\x89PNG")
    assert len(bomb) < 200_000
    assert len(_get(shop, "/huge").content) == 3_000_000
    assert _get(shop, "/down").status_code == 503


def test_slow_drip_fault_trickles_the_body(make_shop):
    shop = make_shop("shopify", products=1)
    shop.add_fault("/robots.txt", "drip", chunk=20, interval=0.05)
    start = time.monotonic()
    body = _get(shop, "/robots.txt", **{"Accept-Encoding": "identity"}).content
    assert body.startswith(b"User-agent")
    assert time.monotonic() - start >= 0.1


def test_broken_products_have_bad_markup(make_shop):
    shop = make_shop("schema_org", products=3)
    p = shop.break_product(shop.products[0].id, "malformed_jsonld")
    html = _get(shop, shop.product_url(p.id)[len(shop.base_url) :]).text
    blocks = html.split('<script type="application/ld+json">')[1:]
    parsed = []
    for block in blocks:
        try:
            parsed.append(json.loads(block.split("</script>")[0]))
        except ValueError:
            parsed.append(None)
    assert None in parsed
    assert any(parsed)
    shop.break_product(shop.products[1].id, "soft404")
    soft = _get(shop, shop.product_url(shop.products[1].id)[len(shop.base_url) :])
    assert soft.status_code == 200
    assert "Page not found" in soft.text


def test_robots_variants(make_shop):
    shop = make_shop("shopify", products=1)
    shop.set_robots("User-agent: MeepoBot\nDisallow: /\n")
    assert "MeepoBot" in _get(shop, "/robots.txt").text
    shop.set_robots("oops", status=503)
    assert _get(shop, "/robots.txt").status_code == 503
    shop.set_robots(None)
    assert _get(shop, "/robots.txt").status_code == 404


def test_removed_products_leave_listings_and_pages(make_shop):
    shop = make_shop("woocommerce", products=3)
    gone = shop.remove_product(shop.products[0].id)
    ids = [p["id"] for p in _get(shop, "/wp-json/wc/store/v1/products").json()]
    assert gone.id not in ids
    assert _get(shop, f"/product/{gone.handle}/").status_code == 404


def test_serve_demo_shop_command_rejects_bad_arguments():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError):
        call_command("serve_demo_shop", "--products", "-1")
