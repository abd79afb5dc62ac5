"""The demo shop's issue-9 structures: variants with their own pictures, prices, stock and GTINs,
sale prices, identifiers in JSON-LD, a store with no markup, and a second store (same seed)
selling the same products (same GTINs) at other prices."""

import json
import re
from decimal import Decimal
from io import BytesIO

import pytest
import requests
from bs4 import BeautifulSoup
from PIL import Image

from demo.shop import DemoShop
from demo.shop.catalog import gtin_check_digit


def _get(shop, path):
    response = requests.get(shop.base_url + path, timeout=5)
    response.raise_for_status()
    return response


def _json_ld(html):
    blocks = BeautifulSoup(html, "html.parser").select('script[type="application/ld+json"]')
    return [json.loads(b.string) for b in blocks]


def _valid_gtin(code):
    return code.isdigit() and gtin_check_digit(code[:-1]) == code[-1]


def test_catalogue_has_variants_sales_and_valid_gtins():
    products = DemoShop(products=60).products
    assert all(_valid_gtin(p.gtin) and len(p.gtin) == 13 for p in products)
    assert all(_valid_gtin(v.gtin) for p in products for v in p.variants)
    assert len({v.gtin for p in products for v in p.variants}) == sum(
        len(p.variants) for p in products
    )
    coloured = [p for p in products if any("Colour" in v.options for v in p.variants)]
    sized = [p for p in products if any("Size" in v.options for v in p.variants)]
    on_sale = [p for p in products if p.list_price is not None]
    assert len(coloured) >= 5
    assert len(sized) >= 5
    assert len(on_sale) >= 5
    assert all(p.list_price > p.price for p in on_sale)
    for p in products:
        # The product's price is its lowest variant price; the first variant is that one.
        assert p.price == min(v.price for v in p.variants) == p.variants[0].price
        assert p.variants[0].available == (p.availability == "in_stock")
        assert not any(v.available for v in p.variants) or p.availability == "in_stock"


def test_colour_variants_have_pictures_in_their_colour(make_shop):
    shop = make_shop("shopify", products=30)
    product = next(p for p in shop.products if len({v.image.name for v in p.variants}) > 1)
    variant = next(v for v in product.variants if v.image.kind == "variant")
    path = shop.image_path(product.id, product.images.index(variant.image))
    picture = Image.open(BytesIO(_get(shop, path).content)).convert("RGB")
    centre = picture.getpixel((512, 512))
    assert sum(abs(a - b) for a, b in zip(centre, variant.image.rgb, strict=True)) < 200


def test_shopify_products_json_lists_options_variant_pictures_and_compare_at(make_shop):
    shop = make_shop("shopify", products=30)
    items = {p["id"]: p for p in _get(shop, "/products.json?limit=30").json()["products"]}
    product = next(p for p in shop.products if len({v.image.name for v in p.variants}) > 1)
    item = items[product.id]
    assert item["options"][0]["name"] == "Colour"
    variant = next(v for v in item["variants"] if v["featured_image"])
    assert variant["id"] in variant["featured_image"]["variant_ids"]
    image = next(im for im in item["images"] if variant["id"] in im["variant_ids"])
    assert image["src"] == variant["featured_image"]["src"]
    sale = next(p for p in shop.products if p.list_price is not None)
    first = items[sale.id]["variants"][0]
    assert (first["price"], first["compare_at_price"]) == (
        f"{sale.price:.2f}",
        f"{sale.list_price:.2f}",
    )
    plain = next(p for p in shop.products if len(p.variants) == 1)
    assert items[plain.id]["variants"][0]["option1"] == "Default Title"


def test_shopify_page_json_ld_has_product_group_with_variant_identifiers(make_shop):
    shop = make_shop("shopify", products=30)
    product = next(p for p in shop.products if len(p.variants) > 1)
    (data,) = _json_ld(_get(shop, f"/products/{product.handle}").text)
    assert data["@type"] == "ProductGroup"
    nodes = data["hasVariant"]
    assert [n["gtin13"] for n in nodes] == [v.gtin for v in product.variants]
    assert [n["sku"] for n in nodes] == [v.sku for v in product.variants]
    assert nodes[0]["offers"]["url"].endswith(f"?variant={product.variants[0].id}")
    assert nodes[0]["offers"]["price"] == f"{product.variants[0].price:.2f}"


def test_schema_org_page_states_identifiers_and_list_price(make_shop):
    shop = make_shop("schema_org", products=40)
    product = next(
        p
        for i, p in enumerate(shop.products)
        if p.list_price is not None and i % 9 not in (4, 7)  # a JSON-LD page
    )
    (data,) = _json_ld(_get(shop, f"/p/{product.handle}").text)
    node = data["@graph"][1] if "@graph" in data else data
    assert (node["gtin13"], node["mpn"], node["sku"]) == (
        product.gtin,
        product.mpn,
        f"SKU-{product.id}",
    )
    (spec,) = node["offers"]["priceSpecification"]
    assert spec["priceType"] == "https://schema.org/ListPrice"
    assert spec["price"] == f"{product.list_price:.2f}"


def test_woocommerce_variable_products_list_variations_served_one_by_one(make_shop):
    shop = make_shop("woocommerce", products=30)
    items = {p["id"]: p for p in _get(shop, "/wp-json/wc/store/v1/products?per_page=30").json()}
    product = next(p for p in shop.products if len(p.variants) > 1)
    item = items[product.id]
    assert item["type"] == "variable"
    assert [v["id"] for v in item["variations"]] == [v.id for v in product.variants]
    assert item["prices"]["price_range"]["min_amount"] == str(int(product.price * 100))
    dearest = max(product.variants, key=lambda v: v.price)
    variation = _get(shop, f"/wp-json/wc/store/v1/products/{dearest.id}").json()
    assert (variation["type"], variation["parent"], variation["sku"]) == (
        "variation",
        product.id,
        dearest.sku,
    )
    assert variation["prices"]["price"] == str(int(dearest.price * 100))
    assert variation["is_in_stock"] == dearest.available
    sale = next(p for p in shop.products if p.list_price is not None)
    assert items[sale.id]["on_sale"] is True
    assert items[sale.id]["prices"]["regular_price"] == str(int(sale.list_price * 100))
    assert (
        requests.get(shop.base_url + "/wp-json/wc/store/v1/products/1", timeout=5).status_code
        == 404
    )


def test_store_without_markup_shows_only_visible_text(make_shop):
    shop = make_shop("schema_org", products=6, markup="none")
    product = shop.products[0]
    html = _get(shop, f"/p/{product.handle}").text
    assert not _json_ld(html)
    assert "itemprop" not in html
    assert 'property="og:' not in html
    page = BeautifulSoup(html, "html.parser")
    assert page.h1.get_text() == product.title
    assert page.select_one(".price").get_text() == f"€{product.price:.2f}"
    assert re.search(r"(In stock|Out of stock|pre-order)", page.select_one(".stock").get_text())


def test_markup_none_is_for_schema_org_stores_only():
    with pytest.raises(ValueError, match="markup"):
        DemoShop("shopify", products=1, markup="none")


def test_same_seed_at_another_price_is_the_same_products_elsewhere():
    main = DemoShop("shopify", products=8)
    outlet = DemoShop("schema_org", products=8, price_factor=Decimal("0.9"))
    assert [p.gtin for p in outlet.products] == [p.gtin for p in main.products]
    for ours, theirs in zip(main.products, outlet.products, strict=True):
        assert theirs.price == (ours.price * Decimal("0.9")).quantize(Decimal("0.01"))
        assert theirs.variants[0].price == theirs.price


@pytest.mark.django_db(transaction=True)
def test_recrawl_with_variants_updates_only_what_changed(fast_crawl, make_shop):
    """Through the real scraper: a re-read listing with the same variants changes nothing; a
    variant's new price updates its product and that variant row only."""
    from catalog.models import Product, ProductVariant
    from pipeline.scrape import add_store, scrape_stores

    shop = make_shop("shopify", products=12)
    add_store(shop.base_url, crawl_delay=0.0)
    scrape_stores()
    changed = next(p for p in shop.products if len(p.variants) > 1)
    stored = ProductVariant.objects.filter(product__external_id=str(changed.id))
    assert stored.count() == len(changed.variants)
    rows_before = dict(ProductVariant.objects.values_list("pk", "updated_at"))
    dearest = changed.variants[-1]
    dearest.price += Decimal("1.00")
    shop.update_product(changed.id)  # the listing's Last-Modified moves: it is read again

    report = scrape_stores()

    assert (report.created, report.updated, report.unchanged) == (0, 1, 11)
    product = Product.objects.get(external_id=str(changed.id))
    assert product.price_max == max(v.price for v in changed.variants)
    row = ProductVariant.objects.get(product=product, external_id=str(dearest.id))
    assert row.price == dearest.price
    rows_after = dict(ProductVariant.objects.values_list("pk", "updated_at"))
    assert rows_after.keys() == rows_before.keys()  # same rows, same ids
    untouched = ProductVariant.objects.exclude(product=product).values_list("pk", flat=True)
    assert all(rows_after[pk] == rows_before[pk] for pk in untouched)


@pytest.mark.parametrize(
    "args",
    [
        ["--price-factor", "zero"],
        ["--price-factor", "-1"],
        ["--flavour", "shopify", "--markup", "none"],
    ],
)
def test_serve_demo_shop_rejects_bad_markup_and_price_factor(args):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError) as caught:
        call_command("serve_demo_shop", *args)
    assert caught.value.returncode == 2
