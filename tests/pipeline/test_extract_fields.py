"""Issue 9 new capability: identifiers, sale/list prices, API variants, visible-text fallback,
and a recorded source for every field."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.platforms import shopify, woocommerce
from pipeline.platforms.extract import extract_products
from pipeline.platforms.extract.schema import SOURCE_FIELDS
from pipeline.platforms.identifiers import normalize_gtin

PAGE = "https://shop.example/p/teapot"


def _one(body: str, url: str = PAGE, content_type: str = "text/html; charset=utf-8"):
    products, notes = extract_products(body.encode(), url, content_type=content_type)
    assert len(products) == 1, notes
    return products[0]


def _ld(data: dict, body: str = "") -> str:
    return f'<html><head><script type="application/ld+json">{json.dumps(data)}</script></head><body>{body}</body></html>'


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("4006381333931", "4006381333931"),  # EAN-13
        ("036000291452", "0036000291452"),  # UPC-A as 13 digits
        ("00036000291452", "0036000291452"),  # GTIN-14 padding an EAN-13
        ("10036000291459", "10036000291459"),  # a real GTIN-14 stays 14
        ("96385074", "96385074"),  # GTIN-8 kept
        ("0-306-40615-2", "9780306406157"),  # ISBN-10 → ISBN-13
        ("4006381333932", ""),  # wrong check digit
        ("12345", ""),
        ("0000000000000", ""),
        (4006381333931, "4006381333931"),
    ],
)
def test_gtin_is_validated_and_normalised(raw, expected):
    assert normalize_gtin(raw) == expected


def test_identifiers_and_list_price_from_json_ld():
    data = {
        "@type": "Product",
        "name": "Teapot",
        "sku": " TP-01 ",
        "mpn": "M-77",
        "gtin12": "036000291452",
        "brand": "Kiln",
        "offers": {
            "@type": "Offer",
            "price": "45.00",
            "priceCurrency": "EUR",
            "priceSpecification": {
                "@type": "UnitPriceSpecification",
                "priceType": "https://schema.org/StrikethroughPrice",
                "price": "60.00",
                "priceCurrency": "EUR",
            },
        },
    }
    p = _one(_ld(data))
    assert (p.sku, p.mpn, p.gtin, p.brand) == ("TP-01", "M-77", "0036000291452", "Kiln")
    assert (p.price, p.list_price) == (Decimal("45.00"), Decimal("60.00"))
    for name in ("title", "sku", "mpn", "gtin", "brand", "price", "list_price", "currency"):
        assert p.sources[name] == "json-ld"


def test_invalid_gtin_on_the_page_is_not_stored():
    p = _one(_ld({"@type": "Product", "name": "Teapot", "gtin13": "4006381333932"}))
    assert p.gtin == ""


def test_offers_with_own_skus_become_variants_and_the_page_sku_picks_the_gtin():
    offers = [
        {"sku": "A-S", "gtin13": "4006381333931", "price": "10", "priceCurrency": "EUR",
         "availability": "InStock", "url": PAGE + "?variant=1"},
        {"sku": "A-M", "gtin13": "5901234123457", "price": "10", "priceCurrency": "EUR",
         "availability": "InStock", "url": PAGE + "?variant=2"},
    ]  # fmt: skip
    p = _one(_ld({"@type": "Product", "name": "Apron", "sku": "A-M", "offers": offers}))
    assert [v.sku for v in p.variants] == ["A-S", "A-M"]
    assert (p.sku, p.gtin) == ("A-M", "5901234123457")
    assert p.variants[0].url == PAGE + "?variant=1"


SHOPIFY_ITEM = {
    "id": 9,
    "title": "Tote",
    "handle": "tote",
    "vendor": "Field",
    "options": [{"name": "Colour"}],
    "variants": [
        {"id": 1, "title": "Olive", "option1": "Olive", "sku": "T-OLV", "barcode": "4006381333931",
         "available": False, "price": "60.00", "compare_at_price": "85.00"},
        {"id": 2, "title": "Tan", "option1": "Tan", "sku": "T-TAN", "barcode": "036000291452",
         "available": True, "price": "68.00", "compare_at_price": "85.00"},
        {"id": 3, "title": "Black", "option1": "Black", "sku": "T-BLK", "barcode": "",
         "available": True, "price": "70.00", "compare_at_price": None},
    ],
    "images": [
        {"src": "https://cdn.shopify.com/s/files/olive.jpg", "position": 1, "variant_ids": [1]},
        {"src": "https://cdn.shopify.com/s/files/tan.jpg", "position": 2, "variant_ids": [2]},
    ],
}  # fmt: skip


def test_shopify_variants_carry_options_ids_prices_stock_images_and_links():
    p = shopify.parse_product(SHOPIFY_ITEM, "https://shop.example", "USD")
    olive, tan, black = p.variants
    assert (tan.options, tan.sku, tan.gtin) == ({"Colour": "Tan"}, "T-TAN", "0036000291452")
    assert (tan.price, tan.list_price, tan.availability) == (
        Decimal("68.00"),
        Decimal("85.00"),
        "in_stock",
    )
    assert tan.image_url == "https://cdn.shopify.com/s/files/tan.jpg?width=640"
    assert tan.url == "https://shop.example/products/tote?variant=2"
    assert (olive.availability, black.list_price, black.gtin) == ("out_of_stock", None, "")
    # The product: cheapest available variant's price and list price, first available's ids.
    assert (p.price, p.list_price, p.sku, p.gtin) == (
        Decimal("68.00"),
        Decimal("85.00"),
        "T-TAN",
        "0036000291452",
    )
    assert set(p.sources.values()) == {"api"}


def test_woocommerce_sale_sku_backorder_and_three_decimal_prices():
    item = {
        "id": 5,
        "name": "Oud oil",
        "permalink": "https://wp.example/product/oud/",
        "sku": "OUD-50",
        "is_in_stock": True,
        "is_on_backorder": True,
        "prices": {"price": "12750", "regular_price": "15000", "currency_code": "KWD",
                   "currency_minor_unit": 3},
        "attributes": [{"name": "Size", "taxonomy": "pa_size"}],
        "variations": [{"id": 6, "attributes": [{"name": "Size", "value": "50ml"}]}],
    }  # fmt: skip
    p = woocommerce.parse_product(item, "https://wp.example")
    assert (p.price, p.list_price, p.currency) == (Decimal("12.750"), Decimal("15.000"), "KWD")
    assert (p.sku, p.availability) == ("OUD-50", "preorder")
    (v,) = p.variants
    assert (v.external_id, v.options) == ("6", {"Size": "50ml"})
    assert v.url == "https://wp.example/product/oud/?attribute_pa_size=50ml"


NO_MARKUP = """<html><head><title>Teapot | Kiln</title></head><body>
<header><a href="/cart" class="cart">Cart 0,00 €</a></header>
<main><img class="product-main-image" src="/img/teapot.jpg" alt="Teapot">
<h1>Stoneware Teapot</h1>
<div class="product-price">71,91 € <s>79,90 €</s></div>
<p class="stock">{stock}</p>
<table><tr><th>EAN</th><td>4006381333931</td></tr><tr><th>Brand</th><td>Kiln</td></tr></table>
<p>SKU: KT-01</p>
<button class="add-to-cart">Add to cart</button></main>
<section class="related"><h2>You may also like</h2><span class="price">9,90 €</span>
<span>Sold out</span></section>
</body></html>"""


def test_page_without_markup_reads_like_a_shopper():
    p = _one(NO_MARKUP.format(stock=""))
    assert (p.title, p.price, p.list_price, p.currency) == (
        "Stoneware Teapot",
        Decimal("71.91"),
        Decimal("79.90"),
        "EUR",
    )
    assert p.availability == "in_stock"  # the related block's "Sold out" is not this product's
    assert (p.gtin, p.sku, p.brand) == ("4006381333931", "KT-01", "Kiln")
    assert p.image_urls == ["https://shop.example/img/teapot.jpg"]
    assert set(p.sources.values()) == {"visible-text"}
    assert set(p.sources) == {
        "title", "price", "list_price", "currency", "availability", "image_urls", "gtin", "sku",
        "brand",
    }  # fmt: skip


@pytest.mark.parametrize(
    "phrase",
    [
        "Out of stock",
        "Ausverkauft",
        "Agotado",
        "Épuisé",
        "Esaurito",
        "Niet op voorraad",
        "Currently unavailable",
        "Esgotado",
        "Brak w magazynie",
        "Slutsåld",
        "在庫切れ",
        "품절",
        "Нет в наличии",
        "Tükendi",
    ],
)
def test_out_of_stock_phrases_in_many_languages(phrase):
    assert _one(NO_MARKUP.format(stock=phrase)).availability == "out_of_stock"


def test_visible_price_left_empty_when_unsure_and_the_reason_noted():
    page = (
        "<html><body><h1>Kettle</h1><div class='price'>71,91 € 79,90 €</div>"
        "<p>In stock</p></body></html>"
    )
    products, notes = extract_products(page.encode(), PAGE)
    assert products == []  # without markup, no clear price means no product
    assert any("several amounts" in n for n in notes)
    data = {"@type": "Product", "name": "Kettle"}
    marked = page.replace(
        "<body>", f'<body><script type="application/ld+json">{json.dumps(data)}</script>'
    )
    (p,), notes = extract_products(marked.encode(), PAGE)
    assert (p.title, p.price, p.availability) == ("Kettle", None, "in_stock")
    assert any("several amounts" in n for n in notes)


def test_markup_wins_over_visible_text_which_only_fills_gaps():
    data = {"@type": "Product", "name": "Teapot", "offers": {"price": "50", "priceCurrency": "EUR"}}
    p = _one(_ld(data, "<h1>Other title</h1><div class='price'>9,00 €</div><p>Out of stock</p>"))
    assert (p.title, p.price) == ("Teapot", Decimal("50.00"))
    assert (p.availability, p.sources["availability"]) == ("out_of_stock", "visible-text")


@pytest.mark.parametrize(
    "page",
    [
        "<html><body><h1>Our trip to Kyoto</h1><p>We saw teapots, in stock now.</p></body></html>",
        '<html><head><meta property="og:type" content="article"></head><body><h1>Teapots</h1>'
        '<p class="price">€ 20</p></body></html>',
        "<html><body><h1>Mugs</h1>"
        + "".join(f'<li class="product"><span class="price">€ {n}</span></li>' for n in (8, 9, 12))
        + "</body></html>",
    ],
)
def test_blog_posts_articles_and_listings_are_not_products(page):
    products, notes = extract_products(page.encode(), PAGE)
    assert products == []
    assert notes


def test_offers_in_several_currencies_are_not_compared_across_currencies():
    offers = [
        {"price": "24.90", "priceCurrency": "EUR", "availability": "InStock"},
        {"price": "21.50", "priceCurrency": "GBP", "availability": "InStock"},
    ]
    p = _one(_ld({"@type": "Product", "name": "Candle", "offers": offers}))
    assert (p.price, p.currency) == (Decimal("24.90"), "EUR")


def test_price_and_stock_written_on_the_product_node_itself():
    data = {"@type": "Product", "name": "Farm", "price": "39.00", "priceCurrency": "EUR",
            "availability": "https://schema.org/InStock"}  # fmt: skip
    p = _one(_ld(data))
    assert (p.price, p.currency, p.availability) == (Decimal("39.00"), "EUR", "in_stock")


def test_rdfa_lite_and_data_vocabulary_microdata_are_read():
    rdfa = (
        '<html><body><article vocab="http://schema.org/" typeof="Product">'
        '<h1 property="name">Board</h1><img property="image" src="/b.jpg">'
        '<div property="offers" typeof="Offer"><span property="priceCurrency" content="USD">$</span>'
        '<span property="price" content="75.00">75.00</span>'
        '<link property="availability" href="http://schema.org/InStock"></div>'
        '<span property="sku">PW-1</span></article></body></html>'
    )
    p = _one(rdfa)
    assert (p.title, p.price, p.currency, p.sku) == ("Board", Decimal("75.00"), "USD", "PW-1")
    assert p.sources["price"] == "microdata"
    dv = (
        '<html><body><div itemscope itemtype="http://data-vocabulary.org/Product">'
        '<h1 itemprop="name">Olio</h1><div itemprop="offerDetails" itemscope '
        'itemtype="http://data-vocabulary.org/Offer"><meta itemprop="currency" content="EUR">'
        '€ <span itemprop="price">24,50</span></div></div></body></html>'
    )
    q = _one(dv)
    assert (q.price, q.currency) == (Decimal("24.50"), "EUR")


@pytest.mark.parametrize(
    ("price_html", "price", "list_price"),
    [
        ('<div class="pricing"><span class="was">Was £30.00</span> <span class="now">Now £22.50</span></div>',
         "22.50", "30.00"),
        ('<p class="price"><span class="tax-excluded">2,000円\uff08税抜\uff09</span> '
         '<span class="tax-included">2,200円\uff08税込\uff09</span></p>', "2200", None),
        ('<div class="price">3 450 ₽</div><div class="old-price">4 100 ₽</div>', "3450", "4100"),
        ("<p>14,90 €</p>", "14.90", None),
    ],
)  # fmt: skip
def test_visible_prices_as_shops_print_them(price_html, price, list_price):
    page = f"<html><body><h1>Thing</h1>{price_html}<p>In stock</p></body></html>"
    p = _one(page)
    assert p.price == Decimal(price)
    assert p.list_price == (Decimal(list_price) if list_price else None)


def test_site_logo_h1_is_not_the_product_title():
    page = (
        '<html><body><header><h1 class="logo">Kiln &amp; Co</h1></header>'
        '<h2 class="product-name">Celadon Teapot</h2><p class="product-price">$86.00</p>'
        "</body></html>"
    )
    assert _one(page).title == "Celadon Teapot"


def test_weak_stock_words_in_a_sentence_do_not_decide_stock():
    page = (
        "<html><body><h1>Mug</h1><p class='price'>€ 9</p>"
        "<p>Gift wrapping not available for this item, sorry.</p>"
        "<p>Availability: Not available</p></body></html>"
    )
    assert _one(page).availability == "out_of_stock"
    sentence_only = page.replace("<p>Availability: Not available</p>", "")
    assert _one(sentence_only).availability == "unknown"


def test_shopify_theme_product_json_gives_identifiers_and_variants():
    product = {
        "id": 44,
        "title": "Tea 500 g",
        "handle": "tea-500",
        "vendor": "Teekontor",
        "options": ["Size"],
        "images": ["//shop.example/cdn/shop/products/tea.jpg"],
        "variants": [
            {"id": 1, "title": "500 g", "option1": "500 g", "sku": "T-500", "available": True,
             "price": 129900, "compare_at_price": 149900, "barcode": "4006381333931"},
        ],
    }  # fmt: skip
    page = (
        '<html><head><meta property="og:type" content="product">'
        '<meta property="og:price:currency" content="EUR"></head><body><h1>Tea 500 g</h1>'
        f"<script type='application/json' data-product-json>{json.dumps(product)}</script>"
        "</body></html>"
    )
    p = _one(page)
    assert (p.price, p.list_price, p.currency) == (Decimal("1299.00"), Decimal("1499.00"), "EUR")
    assert (p.sku, p.gtin, p.brand) == ("T-500", "4006381333931", "Teekontor")
    assert (p.sources["sku"], p.sources["currency"]) == ("api", "opengraph")


def test_a_wrapper_whose_class_sounds_like_chrome_still_holds_the_product():
    page = (
        '<html><body><div class="menu-offset header-spacer"><h1>Lamp</h1>'
        '<p class="price">€ 49,95</p><p>In stock</p>'
        '<div class="related-products"><span class="price">€ 9</span><p>Sold out</p></div>'
        "</div></body></html>"
    )
    p = _one(page)
    assert (p.title, p.price, p.availability) == ("Lamp", Decimal("49.95"), "in_stock")


def test_og_title_loses_the_shop_name_and_og_logo_is_not_a_product_photo():
    head = (
        '<meta property="og:type" content="product"><meta property="og:site_name" content="Kiln">'
        '<meta property="og:title" content="Celadon Teapot | Kiln">'
        '<meta property="og:image" content="/img/kiln-logo.png">'
        '<meta property="og:image" content="/img/teapot.jpg">'
        '<meta property="product:price:amount" content="86"><meta property="product:price:currency" content="USD">'
    )
    p = _one(f"<html><head>{head}</head><body></body></html>")
    assert (p.title, p.image_urls) == ("Celadon Teapot", ["https://shop.example/img/teapot.jpg"])


SOURCES = {"api", "json-ld", "microdata", "opengraph", "meta", "visible-text"}
CORPUS = Path(__file__).parent / "corpus"


def _corpus_pages():
    lines = (CORPUS / "manifest.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.strip()]
    return [e for e in entries if e.get("kind", "html") == "html"]


@pytest.mark.parametrize("entry", _corpus_pages(), ids=lambda e: e["file"])
def test_every_field_read_from_a_corpus_page_names_its_source(entry):
    body = (CORPUS / entry["file"]).read_bytes()
    products, _ = extract_products(body, entry["url"], content_type=entry.get("content_type", ""))
    for p in products:
        for name in SOURCE_FIELDS:
            value = getattr(p, name)
            if value not in (None, "", [], "unknown"):
                assert p.sources.get(name) in SOURCES, name


def test_label_value_facts_need_a_label_not_just_a_word():
    page = (
        "<html><body><h1>Lamp</h1><p class='price'>€ 40</p><p>Brand new design</p>"
        "<div><strong>SKU</strong><div>LMP-7</div></div><p>EAN-Code 4006381333931</p>"
        "</body></html>"
    )
    p = _one(page)
    assert (p.brand, p.sku, p.gtin) == ("", "LMP-7", "4006381333931")


def test_lazy_loaded_microdata_image_and_placeholders_are_not_the_photo():
    page = (
        '<html><body><div itemscope itemtype="https://schema.org/Product"><h1 itemprop="name">'
        'Google Pixel case</h1><img itemprop="image" src="/img/lazy-placeholder.gif" '
        'data-src="/img/pixel-case.jpg"><div itemprop="offers" itemscope '
        'itemtype="https://schema.org/Offer"><meta itemprop="price" content="20">'
        '<meta itemprop="priceCurrency" content="USD"></div></div></body></html>'
    )
    assert _one(page).image_urls == ["https://shop.example/img/pixel-case.jpg"]


@pytest.mark.parametrize("phrase", ["Pre-order now", "Vorbestellen", "Précommande", "予約受付中"])
def test_pre_order_phrases(phrase):
    page = f"<html><body><h1>Print</h1><p class='price'>€ 30</p><button>{phrase}</button></body></html>"
    assert _one(page).availability == "preorder"


@pytest.mark.parametrize(
    ("price_html", "price", "list_price"),
    [
        ('<div class="prezzi"><span class="prezzo-pieno">49,90 €</span> <span class="sconto">-30%</span> '
         '<span class="prezzo-scontato">34,93 €</span></div>', "34.93", "49.90"),
        ('<p class="preco-de">De: R$ 259,90</p><p class="preco-por">Por: R$ 219,90</p>'
         '<p class="parcelas">ou 3x de R$ 73,30 sem juros</p>', "219.90", "259.90"),
        ('<div class="fiyat-alani"><span class="indirim">%20 indirim</span> <span class="eski-fiyat">'
         '₺1.124,00</span> <span class="yeni-fiyat">₺899,00</span></div>', "899.00", "1124.00"),
        ('<div class="ceny"><p class="cena-s-dph">Cena: 2 490 Kč</p><p class="cena-bez-dph">'
         'Cena bez DPH: 2 058 Kč</p></div>', "2490", None),
        ('<div data-hook="prices"><span data-hook="formatted-secondary-price">$90.00</span>'
         '<span data-hook="formatted-primary-price">$72.00</span></div>', "72.00", "90.00"),
        ('<div class="pris"><span class="rea">399 kr</span> <span class="ordinarie">Ord. pris 599 kr'
         "</span></div>", "399", "599"),
    ],
)  # fmt: skip
def test_sale_and_regular_prices_as_shops_around_the_world_print_them(
    price_html, price, list_price
):
    page = f"<html lang='sv'><body><h1>Thing</h1>{price_html}<p>In stock</p></body></html>"
    p = _one(page)
    assert p.price == Decimal(price)
    assert p.list_price == (Decimal(list_price) if list_price else None)


def test_currency_in_a_sibling_element_of_the_price():
    page = (
        '<html><body><h1>Mug</h1><div class="buy"><span class="currency">€</span>'
        '<span class="price">12,99</span></div></body></html>'
    )
    p = _one(page)
    assert (p.price, p.currency) == (Decimal("12.99"), "EUR")


def test_two_unlabelled_prices_side_by_side_give_no_price():
    page = (
        "<html><body><h1>Pan</h1><p class='price-a'>€ 49,90</p><p class='price-b'>€ 34,90</p>"
        "<p>In stock</p></body></html>"
    )
    products, notes = extract_products(page.encode(), PAGE)
    assert products == []
    assert any("side by side" in n for n in notes)
    labelled = page.replace("price-b", "price-sale")
    assert _one(labelled).price == Decimal("34.90")


def test_two_bare_amounts_side_by_side_give_no_price():
    page = "<html><body><h1>Pan</h1><p>€ 49,90</p><p>€ 34,90</p><p>In stock</p></body></html>"
    assert extract_products(page.encode(), PAGE)[0] == []
    single = "<html><body><h1>Pan</h1><p>€ 34,90</p><p>In stock</p></body></html>"
    assert _one(single).price == Decimal("34.90")


def test_stock_words_inside_a_description_paragraph_do_not_decide_stock():
    story = "Our bestseller sold out twice last winter, so this year we made three times as many."
    page = (
        f"<html><body><h1>Scarf</h1><p class='price'>€ 25</p><p>{story}</p>"
        "<button class='add-to-cart'>Add to cart</button></body></html>"
    )
    assert _one(page).availability == "in_stock"


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        ("stock out-of-stock", "out_of_stock"),
        ("stock in-stock", "in_stock"),
        ("stock unavailable", "out_of_stock"),
        ("stock available", "in_stock"),
    ],
)
def test_stock_classes_of_woocommerce_and_magento_themes(cls, expected):
    page = f'<html><body><h1>Mug</h1><p class="price">€ 5</p><p class="{cls}">12</p></body></html>'
    assert _one(page).availability == expected


@pytest.mark.parametrize(
    "block",
    [
        "€ 24,90 <small>≈ $27.10</small>",
        "€24.90 Save €5.00",
        "€24.90 <span>€2.50 / kg</span>",
        "24,90 € (22,60 € / 1 Liter)",
    ],
)
def test_conversions_savings_and_unit_prices_are_not_the_price(block):
    page = f'<html><body><h1>Tea</h1><div class="price">{block}</div></body></html>'
    assert _one(page).price == Decimal("24.90")


def test_price_on_request_page_is_a_product_without_a_price():
    page = (
        '<html><body><img src="/oven.jpg" class="product-image"><h1>Tiled stove</h1>'
        '<p class="preis">Preis auf Anfrage</p><p>Anfahrt ab 49 € im Umkreis</p></body></html>'
    )
    p = _one(page)
    assert (p.title, p.price, p.currency) == ("Tiled stove", None, "")
    blog = "<html><body><h1>Our stoves</h1><p>Delivery of larger pieces is on request, call for price details.</p></body></html>"
    assert extract_products(blog.encode(), PAGE)[0] == []


def test_struck_price_beside_the_price_without_classes_is_the_list_price():
    data = {
        "@type": "Product",
        "name": "Apron",
        "offers": {"price": "49.00", "priceCurrency": "USD"},
    }
    p = _one(_ld(data, "<h1>Apron</h1><p><s>$59.00</s> <strong>$49.00</strong></p>"))
    assert (p.price, p.list_price, p.sources["list_price"]) == (
        Decimal("49.00"),
        Decimal("59.00"),
        "visible-text",
    )
