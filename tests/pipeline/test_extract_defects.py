"""Issue 9 defects seen on real product pages, each reproduced on a small hand-written page."""

import json
from decimal import Decimal

import pytest

from pipeline.platforms.extract import extract_products
from pipeline.platforms.prices import normalize_currency, parse_price

PAGE = "https://shop.example/products/boot"


def _html(body="", head="", *ld):
    scripts = "".join(f'<script type="application/ld+json">{b}</script>' for b in ld)
    return f"<html><head>{head}{scripts}</head><body>{body}</body></html>".encode()


def _one(body: bytes, url: str = PAGE):
    products, notes = extract_products(body, url)
    assert len(products) == 1, notes
    return products[0]


@pytest.mark.parametrize(
    ("raw", "currency", "expected"),
    [
        ("71,91 € 79,90 €", "EUR", Decimal("71.91")),
        ("109€ 109€ 109", "EUR", Decimal("109.00")),
        ("109 109", "", Decimal("109.00")),
        ("71,91 79,90", "EUR", Decimal("71.91")),
        ("1 299,00 zł", "PLN", Decimal("1299.00")),
        ("1 000 000", "", Decimal("1000000.00")),
    ],
)
def test_two_amounts_are_never_glued_into_one_price(raw, currency, expected):
    assert parse_price(raw, currency) == expected


@pytest.mark.parametrize(
    ("raw", "currency", "expected"),
    [
        ("24.990", "CLP", Decimal("24990")),
        (Decimal("24.990"), "CLP", Decimal("24990")),
        ("$24.990", "CLP", Decimal("24990")),
        ("1500.00", "JPY", Decimal("1500")),
        ("24.99", "JPY", None),
        ("12.345", "KWD", Decimal("12.345")),
        ("12,345", "KWD", Decimal("12.345")),
        ("1.234,500", "KWD", Decimal("1234.500")),
        ("1.299,00", "EUR", Decimal("1299.00")),
    ],
)
def test_zero_and_three_decimal_currencies_use_their_minor_unit(raw, currency, expected):
    got = parse_price(raw, currency)
    assert got == expected
    if got is not None and currency == "KWD":
        assert got.as_tuple().exponent == -3  # kept exact, not rounded to fils/100


def test_json_ld_number_with_three_decimals_in_clp_is_thousands():
    data = '{"@type":"Product","name":"Silla","offers":{"price":24.990,"priceCurrency":"CLP"}}'
    p = _one(_html("", "", data))
    assert (p.price, p.currency) == (Decimal("24990"), "CLP")


def test_microdata_price_text_with_struck_old_price_reads_the_sale_price():
    body = (
        '<div itemscope itemtype="https://schema.org/Product"><h1 itemprop="name">Mug</h1>'
        '<div itemprop="offers" itemscope itemtype="https://schema.org/Offer">'
        '<span itemprop="price">71,91 € <del>79,90 €</del></span>'
        '<meta itemprop="priceCurrency" content="EUR"></div></div>'
    )
    assert _one(_html(body)).price == Decimal("71.91")


def test_microdata_list_of_offers_and_offer_in_offer_keep_price_and_stock():
    listed = (
        '<div itemscope itemtype="http://schema.org/Product"><span itemprop="name">Rug</span>'
        '<div itemprop="offers" itemscope itemtype="http://schema.org/Offer">'
        '<meta itemprop="price" content="80"><meta itemprop="priceCurrency" content="EUR">'
        '<link itemprop="availability" href="http://schema.org/OutOfStock"></div>'
        '<div itemprop="offers" itemscope itemtype="http://schema.org/Offer">'
        '<meta itemprop="price" content="90"><meta itemprop="priceCurrency" content="EUR">'
        '<link itemprop="availability" href="http://schema.org/InStock"></div></div>'
    )
    p = _one(_html(listed))
    assert (p.price, p.currency, p.availability) == (Decimal("90.00"), "EUR", "in_stock")
    nested = (
        '<div itemscope itemtype="http://schema.org/Product"><span itemprop="name">Rug</span>'
        '<div itemprop="offers" itemscope itemtype="http://schema.org/AggregateOffer">'
        '<div itemprop="offers" itemscope itemtype="http://schema.org/Offer">'
        '<meta itemprop="price" content="70"><meta itemprop="priceCurrency" content="GBP">'
        '<link itemprop="availability" href="http://schema.org/InStock"></div></div></div>'
    )
    q = _one(_html(nested))
    assert (q.price, q.currency, q.availability) == (Decimal("70.00"), "GBP", "in_stock")


def test_repeated_microdata_availability_is_read_not_unknown():
    body = (
        '<div itemscope itemtype="http://schema.org/Product"><span itemprop="name">Lamp</span>'
        '<div itemprop="offers" itemscope itemtype="http://schema.org/Offer">'
        '<meta itemprop="price" content="10"><meta itemprop="priceCurrency" content="EUR">'
        '<link itemprop="availability" href="http://schema.org/OutOfStock">'
        '<meta itemprop="availability" content="OutOfStock"></div></div>'
    )
    assert _one(_html(body)).availability == "out_of_stock"


@pytest.mark.parametrize(
    "wrap",
    [
        "/*<![CDATA[*/ {} /*]]>*/",
        "<!-- {} -->",
        "//<![CDATA[\n{}\n//]]>",
    ],
)
def test_json_ld_wrapped_in_cdata_or_comments_is_read(wrap):
    data = '{"@type":"Product","name":"Kettle","offers":{"price":"30","priceCurrency":"EUR"}}'
    p = _one(_html("", "", wrap.replace("{}", data)))
    assert (p.title, p.price) == ("Kettle", Decimal("30.00"))


def test_one_product_node_per_size_first_sold_out_is_in_stock_at_the_lowest_price():
    sizes = [
        ("8", "OutOfStock", "99"),
        ("9", "InStock", "120"),
        ("10", "InStock", "110"),
    ]
    nodes = [
        {
            "@type": "Product",
            "name": f"Trail Boot - US {size}",
            "url": f"{PAGE}?size={size}",
            "sku": f"TB-{size}",
            "offers": {"price": price, "priceCurrency": "USD", "availability": stock},
        }
        for size, stock, price in sizes
    ]
    p = _one(_html("<h1>Trail Boot</h1>", "", json.dumps(nodes)))
    assert (p.title, p.availability, p.price) == ("Trail Boot", "in_stock", Decimal("110.00"))
    assert [v.sku for v in p.variants] == ["TB-8", "TB-9", "TB-10"]
    assert p.sku == "TB-9"  # the first size one can buy


@pytest.mark.parametrize(
    ("related_first", "main"),
    [
        ({"url": "https://shop.example/products/laces"}, {"url": PAGE}),
        ({"@id": "https://shop.example/p/laces#product"}, {"@id": PAGE + "#product"}),
        ({}, {}),  # no URLs: the name matching the page heading decides
    ],
)
def test_main_product_is_chosen_over_related_products(related_first, main):
    related = {"@type": "Product", "name": "Laces", **related_first}
    own = {"@type": "Product", "name": "Trail Boot", **main}
    for node in (related, own):
        node["offers"] = {"price": "5" if node is related else "120", "priceCurrency": "EUR"}
    p = _one(_html("<h1>Trail Boot</h1>", "", json.dumps(related), json.dumps(own)))
    assert (p.title, p.price) == ("Trail Boot", Decimal("120.00"))


def test_aggregate_offer_availability_comes_from_its_nested_offers():
    data = {
        "@type": "Product",
        "name": "Chair",
        "offers": {
            "@type": "AggregateOffer",
            "lowPrice": "40",
            "priceCurrency": "EUR",
            "offers": [
                {"price": "40", "availability": "https://schema.org/OutOfStock"},
                {"price": "45", "availability": "https://schema.org/InStock"},
            ],
        },
    }
    p = _one(_html("", "", json.dumps(data)))
    assert p.availability == "in_stock"
    assert p.price == Decimal("45.00")  # the cheapest one can buy


def test_legacy_charset_page_is_decoded_from_the_http_header_or_its_meta():
    data = json.dumps({"@type": "Product", "name": "Кружка"}, ensure_ascii=False)
    cp1251 = _html("", "", data).decode().encode("cp1251")
    (p,), _ = extract_products(cp1251, PAGE, content_type="text/html; charset=windows-1251")
    assert p.title == "Кружка"
    with_meta = _html("", '<meta charset="windows-1251">', data).decode().encode("cp1251")
    (q,), _ = extract_products(with_meta, PAGE)
    assert q.title == "Кружка"


def test_opengraph_and_product_meta_fill_what_json_ld_lacks_and_keep_every_og_image():
    head = (
        '<meta property="og:image" content="/a.jpg"><meta property="og:image" content="/b.jpg">'
        '<meta property="product:price:currency" content="EUR">'
        '<meta property="product:retailer_item_id" content="SKU-1">'
    )
    data = '{"@type":"Product","name":"Vase","offers":{"price":"19.90"}}'
    p = _one(_html("", head, data))
    assert p.image_urls == ["https://shop.example/a.jpg", "https://shop.example/b.jpg"]
    assert (p.price, p.currency, p.sku) == (Decimal("19.90"), "EUR", "SKU-1")
    assert p.sources["price"] == "json-ld"
    assert p.sources["currency"] == p.sources["image_urls"] == p.sources["sku"] == "opengraph"


def test_product_group_variants_keep_their_images_prices_stock_and_ids():
    data = {
        "@type": "ProductGroup",
        "name": "Beanie",
        "productGroupID": "BN",
        "hasVariant": [
            {
                "@type": "Product",
                "sku": "BN-RED",
                "gtin13": "4006381333931",
                "color": "Red",
                "image": "/red.jpg",
                "offers": {"price": "20", "priceCurrency": "EUR", "availability": "OutOfStock"},
            },
            {
                "@type": "Product",
                "sku": "BN-BLUE",
                "color": "Blue",
                "image": "/blue.jpg",
                "offers": {"price": "22", "priceCurrency": "EUR", "availability": "InStock"},
            },
        ],
    }
    p = _one(_html("", "", json.dumps(data)))
    assert p.image_urls == ["https://shop.example/red.jpg", "https://shop.example/blue.jpg"]
    red, blue = p.variants
    assert (red.sku, red.gtin, red.price, red.availability) == (
        "BN-RED",
        "4006381333931",
        Decimal("20.00"),
        "out_of_stock",
    )
    assert (blue.options, blue.image_url) == ({"Color": "Blue"}, "https://shop.example/blue.jpg")
    assert (p.price, p.availability, p.sku) == (Decimal("22.00"), "in_stock", "BN-BLUE")


def test_variants_linked_by_is_variant_of_join_their_group():
    group = {"@type": "ProductGroup", "@id": "#g", "name": "Cap", "productGroupID": "CAP"}
    variant = {
        "@type": "Product",
        "name": "Cap - S",
        "isVariantOf": {"@id": "#g"},
        "offers": {"price": "15", "priceCurrency": "EUR", "availability": "InStock"},
    }
    p = _one(_html("", "", json.dumps({"@graph": [group, variant]})))
    assert (p.title, p.price, p.availability, len(p.variants)) == (
        "Cap",
        Decimal("15.00"),
        "in_stock",
        1,
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("RUR", "RUB"), ("BYR", "BYN"), ("VEF", "VES"), ("rub", "RUB"), ("XYZ", "")],
)
def test_obsolete_currency_codes_become_current_iso_codes(raw, expected):
    assert normalize_currency(raw) == expected


def test_lower_case_types_and_properties_are_read():
    data = (
        '{"@type":"product","name":"Bowl","offers":{"@type":"aggregateoffer",'
        '"lowprice":"7.5","pricecurrency":"usd","availability":"instock"}}'
    )
    p = _one(_html("", "", data))
    assert (p.price, p.currency, p.availability) == (Decimal("7.50"), "USD", "in_stock")


def test_og_price_and_og_availability_are_read():
    head = (
        '<meta property="og:type" content="product"><meta property="og:title" content="Tray">'
        '<meta property="og:price:amount" content="12"><meta property="og:price:currency" content="SEK">'
        '<meta property="og:availability" content="instock">'
    )
    p = _one(_html("", head))
    assert (p.price, p.currency, p.availability) == (Decimal("12.00"), "SEK", "in_stock")
    assert p.sources["price"] == "opengraph"


def test_a_category_page_with_many_product_nodes_is_not_read_as_one_product():
    nodes = [
        {"@type": "Product", "name": name, "url": f"https://shop.example/products/{name}",
         "offers": {"price": "10", "priceCurrency": "EUR"}}
        for name in ("mug", "plate", "bowl")
    ]  # fmt: skip
    products, _ = extract_products(_html("<h1>Tableware</h1>", "", json.dumps(nodes)), PAGE)
    assert products == []


def test_graph_references_to_offers_and_variants_are_resolved():
    graph = [
        {"@type": "Product", "@id": PAGE + "#p", "name": "Boot", "offers": {"@id": "#o"},
         "brand": {"@id": "#b"}},
        {"@type": "Offer", "@id": "#o", "price": "99", "priceCurrency": "EUR",
         "availability": "InStock"},
        {"@type": "Brand", "@id": "#b", "name": "Alp"},
    ]  # fmt: skip
    p = _one(_html("", "", json.dumps({"@graph": graph})))
    assert (p.price, p.availability, p.brand) == (Decimal("99.00"), "in_stock", "Alp")


@pytest.mark.parametrize(
    ("raw", "currency", "expected"),
    [
        ("1\u2019299.\u2013", "CHF", Decimal("1299.00")),
        ("CHF 1'299.00", "CHF", Decimal("1299.00")),
        ("\u20b91,29,999", "INR", Decimal("129999.00")),
        ("12,-", "EUR", Decimal("12.00")),
        ("R$ 1.299,90", "BRL", Decimal("1299.90")),
    ],
)
def test_national_price_formats(raw, currency, expected):
    assert parse_price(raw, currency) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Limited availability", "in_stock"),
        ("in-stock", "in_stock"),
        ("available for order", "in_stock"),
        ("out of stock", "out_of_stock"),
        ("pre_order", "preorder"),
        ("https://schema.org/MadeToOrder", "preorder"),
    ],
)
def test_availability_spellings_from_meta_tags(raw, expected):
    from pipeline.platforms.base import normalize_availability

    assert normalize_availability(raw) == expected


@pytest.mark.parametrize(
    "block",
    [
        "{&quot;@type&quot;:&quot;Product&quot;,&quot;name&quot;:&quot;Kettle&quot;}",
        '{"@type":"WebSite","name":"Shop"}{"@type":"Product","name":"Kettle"}',
        '{"@type":"WebSite","name":"Shop"},\n{"@type":"Product","name":"Kettle"}',
    ],
)
def test_json_ld_escaped_or_with_glued_objects_is_read(block):
    assert _one(_html("", "", block)).title == "Kettle"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("24€99", Decimal("24.99")),
        ("50€ 10 articles", Decimal("50.00")),
    ],
)
def test_currency_symbol_written_as_the_decimal_mark(raw, expected):
    assert parse_price(raw, "EUR") == expected


def test_superscript_cents_are_the_decimals():
    body = '<h1>Towel</h1><div class="price"><span>$24</span><sup class="cents">99</sup></div>'
    assert _one(_html(body)).price == Decimal("24.99")


# -- blind batch b9 (tests/pipeline/corpus/b9_*): classes of misses it showed -----------------


def test_a_unit_price_spec_per_kilogram_is_not_the_price():
    spec = [
        {"@type": "UnitPriceSpecification", "priceType": "https://schema.org/StrikethroughPrice", "price": 5.99},
        {"@type": "UnitPriceSpecification", "price": 9.98,
         "referenceQuantity": {"@type": "QuantitativeValue", "value": 1, "unitCode": "KGM"}},
        {"@type": "UnitPriceSpecification", "price": 4.99},
    ]  # fmt: skip
    offer = {"@type": "Offer", "priceCurrency": "EUR", "priceSpecification": spec}
    data = {"@type": "Product", "name": "Walnuts 500 g", "offers": offer}
    product = _one(_html("<h1>Walnuts 500 g</h1>", "", json.dumps(data)))
    assert (product.price, product.list_price) == (Decimal("4.99"), Decimal("5.99"))


def test_only_a_unit_price_spec_gives_no_price_but_one_per_piece_does():
    per_kg = {"@type": "UnitPriceSpecification", "price": 9.98, "priceCurrency": "EUR",
              "referenceQuantity": {"value": "1", "unitCode": "KGM"}}  # fmt: skip
    per_piece = {**per_kg, "price": 4.99, "referenceQuantity": {"value": "1", "unitCode": "C62"}}
    for spec, expected in ((per_kg, None), (per_piece, Decimal("4.99"))):
        offer = {"@type": "Offer", "priceSpecification": spec}
        data = {"@type": "Product", "name": "Walnuts", "offers": offer}
        assert _one(_html("<h1>Walnuts</h1>", "", json.dumps(data))).price == expected


@pytest.mark.parametrize(
    ("block", "price"),
    [
        ('<div class="price-block"><div class="price price--member">Klubbpris 399 kr</div>'
         '<div class="price price--regular">Ordinarie pris 499 kr</div></div>', "499"),
        ('<p class="product-price">Member price: $45.00 <span>Regular $50.00</span></p>', "50.00"),
        # A sale beside a member price: the sale price is everyone's.
        ('<p class="product-price">Member price: $40.00 <s>$60.00</s> $50.00</p>', "50.00"),
    ],
)  # fmt: skip
def test_a_members_only_price_is_never_the_price_the_regular_one_is(block, price):
    page = f"<html lang='sv'><body><h1>Camping stove</h1>{block}</body></html>"
    products, _ = extract_products(page.encode(), PAGE)
    assert (products[0].price if products else None) == (Decimal(price) if price else None)


def test_a_markup_price_the_page_shows_before_tax_gives_way_to_the_gross_price():
    offer = (
        '<div itemprop="offers" itemscope itemtype="http://schema.org/Offer">'
        '<meta itemprop="priceCurrency" content="CZK"><meta itemprop="price" content="1652.89">'
        '<div class="cena"><strong>2 000 Kč</strong> s DPH</div>'
        '<div class="cena-bez">1 652,89 Kč bez DPH</div></div>'
    )
    body = (
        '<div itemscope itemtype="http://schema.org/Product"><h1 itemprop="name">Konvice</h1>'
        f"{offer}</div>"
    )
    product = _one(_html(body))
    assert (product.price, product.currency) == (Decimal("2000.00"), "CZK")
    # Only the net amount shown (a B2B shop): the markup price stands.
    only_net = body.replace('<div class="cena"><strong>2 000 Kč</strong> s DPH</div>', "")
    assert _one(_html(only_net)).price == Decimal("1652.89")


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        ("", "USD"),
        ("us", "USD"),
        ("en", "USD"),
        ("mx", "MXN"),
        ("au", "AUD"),
        ("es", ""),
        ("pt", ""),
        ("fr", ""),
        ("sv", "USD"),
    ],
)
def test_a_bare_dollar_sign_is_unknown_under_a_language_of_several_dollar_markets(hint, expected):
    assert normalize_currency("$", hint) == expected


def test_a_spanish_page_without_a_country_does_not_read_dollar_as_usd():
    body = '<html lang="es"><body><h1>Tapete</h1><p class="price">$1,299</p></body></html>'
    products, _ = extract_products(body.encode(), "https://casa.example/p/tapete")
    assert not products or products[0].currency != "USD"


def _in_stock_ld(name="Hochbeet"):
    offer = {"@type": "Offer", "price": "249.00", "priceCurrency": "EUR",
             "availability": "https://schema.org/InStock"}  # fmt: skip
    return json.dumps({"@type": "Product", "name": name, "offers": offer})


def test_stale_in_stock_markup_gives_way_to_a_page_that_cannot_be_bought():
    body = (
        "<h1>Hochbeet</h1><p class='price'>249,00 €</p>"
        "<div class='alert'><p>Dieser Artikel ist derzeit nicht verfügbar.</p></div>"
        "<button disabled>Benachrichtigen, wenn verfügbar</button>"
    )
    assert _one(_html(body, "", _in_stock_ld())).availability == "out_of_stock"


@pytest.mark.parametrize(
    "extra",
    [
        "<button>In den Warenkorb</button>",  # one size sold out, the product can be bought
        "<p>Größe XL ausverkauft</p><p>Auf Lager</p>",
    ],
)
def test_in_stock_markup_stands_when_the_page_can_still_be_bought(extra):
    body = f"<h1>Hochbeet</h1><p class='price'>249,00 €</p><p>Ausverkauft</p>{extra}"
    assert _one(_html(body, "", _in_stock_ld())).availability == "in_stock"


@pytest.mark.parametrize(
    ("block", "price", "list_price"),
    [
        # Indian MRP beside a percentage: "MRP" and "OFF" are not currency codes, 18% no price.
        ('<div class="pdp-price"><span>₹1,23,456</span> <span>MRP <s>₹1,49,999</s></span>'
         "<span>(18% OFF)</span></div>", "123456", "149999"),
        # Swiss typographic apostrophe in the crossed-out amount as well as in the price.
        ('<div class="price-box"><span class="price-box__old">statt CHF 2\u2019490.00</span>'
         "<span class=\"price-box__current\">CHF 1\u2019990.00</span></div>", "1990.00", "2490.00"),
    ],
)  # fmt: skip
def test_percentages_and_non_iso_capitals_are_not_prices_and_apostrophes_group(
    block, price, list_price
):
    product = _one(_html(f"<h1>Saree</h1>{block}<p>In stock</p>"))
    assert (product.price, product.list_price) == (Decimal(price), Decimal(list_price))


@pytest.mark.parametrize(
    "line",
    ["Produkt chwilowo niedostępny", "Articolo fuori produzione - non più disponibile",
     "Немає в наявності", "Dieser Artikel ist nicht mehr erhältlich"],
)  # fmt: skip
def test_more_out_of_stock_wordings(line):
    body = f"<h1>Kask</h1><p class='price'>1 249,00 zł</p><p class='info'>{line}</p>"
    assert _one(_html(body)).availability == "out_of_stock"


@pytest.mark.parametrize(("line", "sku"), [("Kód: EH-KON-17", "EH-KON-17"), ("Код товару: KM-TUR-500", "KM-TUR-500")])  # fmt: skip
def test_more_sku_labels(line, sku):
    body = f"<h1>Konvice</h1><p class='price'>2 000 Kč</p><p>{line}</p>"
    assert _one(_html(body)).sku == sku


@pytest.mark.parametrize(
    ("block", "price"),
    [
        ('<div class="item-price">12,000円<span class="tax-label">(税抜)</span>'
         "<br><span>(税込 13,200円)</span></div>", "13200"),
        ('<div class="item-price">12,000円 (税込 13,200円)</div>', "13200"),
        ('<div class="price">4,378円(税込) <span>本体 3,980円</span></div>', "4378"),
    ],
)  # fmt: skip
def test_of_several_amounts_the_one_said_to_include_tax_is_the_price(block, price):
    page = f"<html lang='ja'><body><h1>鉄瓶</h1>{block}</body></html>"
    assert _one(page.encode()).price == Decimal(price)


def test_arabic_indic_digits_and_dotted_arabic_currency_abbreviations():
    assert parse_price("\u0664\u0665\u0669\u066b\u0660\u0660 ر.س.", "SAR") == Decimal("459.00")
    assert parse_price("\u06f1\u06f2\u066c\u06f5\u06f0\u06f0", "") == Decimal("12500.00")
    assert normalize_currency("ر.س.") == "SAR"
    block = (
        '<div class="price-wrap"><span class="price-now">\u0664\u0665\u0669\u066b\u0660\u0660 ر.س.</span>'
        ' <del class="price-old">\u0665\u0662\u0669\u066b\u0660\u0660 ر.س.</del></div>'
    )
    product = _one(_html(f"<h1>عطر عود</h1>{block}"))
    assert (product.price, product.list_price, product.currency) == (
        Decimal("459.00"),
        Decimal("529.00"),
        "SAR",
    )


def _next_data(product: dict, others: list) -> str:
    data = {"props": {"pageProps": {"recommendations": others, "product": product}}}
    return f'<script id="__NEXT_DATA__" type="application/json">{json.dumps(data)}</script>'


def test_a_headless_storefront_product_only_in_next_data():
    money = {"amount": "129.0", "currencyCode": "USD"}
    variants = [
        {"sku": "TR-8", "availableForSale": False, "price": money},
        {"sku": "TR-9", "availableForSale": True, "price": money},
    ]
    product = {"handle": "trail-runner", "title": "Trail Runner", "vendor": "Northpass",
               "availableForSale": True, "featuredImage": {"url": "https://cdn.example/tr.jpg"},
               "priceRange": {"minVariantPrice": money},
               "variants": {"edges": [{"node": v} for v in variants]}}  # fmt: skip
    other = {"handle": "trail-sock", "title": "Trail Sock", "priceRange": {"minVariantPrice": {"amount": "24.0", "currencyCode": "USD"}}}  # fmt: skip
    body = f'<div id="__next"></div>{_next_data(product, [other])}'
    got = _one(_html(body), "https://northpass.example/products/trail-runner")
    assert (got.title, got.price, got.currency, got.availability, got.sku, got.brand) == (
        "Trail Runner", Decimal("129.00"), "USD", "in_stock", "TR-9", "Northpass"
    )  # fmt: skip
    # On another product's URL the blob's product is not the page's.
    products, _ = extract_products(_html(body), "https://northpass.example/products/trail-sock-x")
    assert not products or products[0].price is None


def test_a_plain_state_product_needs_the_page_to_show_its_price():
    state = {"product": {"name": "Tapete", "price": 1299, "listPrice": 1599, "currency": "MXN"}}
    script = f"<script>window.__INITIAL_STATE__={json.dumps(state)};</script>"
    shown = (
        '<h1>Tapete</h1><div class="prices"><s>$1,599</s> <span class="sale">$1,299</span></div>'
    )
    got = _one(_html(shown, script), "https://casa.example/p/tapete")
    assert (got.price, got.list_price, got.currency) == (
        Decimal("1299.00"),
        Decimal("1599.00"),
        "MXN",
    )
    cents = script.replace("1299", "129900")  # money in cents: not what the page shows
    products, _ = extract_products(_html(shown, cents), "https://casa.example/p/tapete")
    assert not products or products[0].price != Decimal("129900")


def test_b2b_net_price_first_tax_label_kept_and_tier_table_not_a_price_block():
    block = (
        '<div class="price-net"><span class="price">12,50 €</span> '
        '<span class="price-label">zzgl. MwSt.</span></div>'
        '<div class="price-gross">14,88 € inkl. 19 % MwSt.</div>'
        '<table class="tier-prices"><tr><td>ab 10</td><td>11,90 €</td></tr>'
        "<tr><td>ab 50</td><td>10,95 €</td></tr></table>"
    )
    product = _one(_html(f"<h1>Handschuhe</h1>{block}<p>Auf Lager</p>"))
    assert (product.price, product.currency) == (Decimal("14.88"), "EUR")


@pytest.mark.parametrize(
    ("attrs", "price"),
    [
        ('data-price="34.90" data-currency="EUR"', Decimal("34.90")),
        ('data-price="3490" data-currency="EUR"', None),  # cents or units? no price
        ('data-price="34.90"', None),  # no currency anywhere
    ],
)
def test_an_empty_price_element_filled_by_a_script_reads_its_data_attributes(attrs, price):
    body = f'<h1>Ciotola</h1><div class="prezzo js-price" {attrs}></div><p>Disponibile</p>'
    products, _ = extract_products(_html(body), PAGE)
    assert (products[0].price if products else None) == price


@pytest.mark.parametrize(
    "block",
    [
        '<div class="prix"><span class="prix-ht">208,25 € HT</span><br>'
        '<span class="prix-ttc">249,90 € TTC</span></div>',
        '<div class="price">208,25 € excl. VAT 249,90 € incl. VAT</div>',
    ],
)
def test_a_before_tax_phrase_does_not_swallow_the_amount_after_it(block):
    assert _one(_html(f"<h1>Fauteuil</h1>{block}")).price == Decimal("249.90")


def test_prices_in_sibling_product_cards_are_a_listing_not_a_product():
    cards = (
        '<ul class="grid"><li><a href="/products/trail-boot">Trail Boot</a>'
        '<span class="price">$149.00</span></li><li><a href="/products/city-boot">City Boot</a>'
        '<span class="price">$129.00</span></li></ul>'
    )
    products, _ = extract_products(_html(f"<h1>2 results for boots</h1>{cards}"), PAGE)
    assert not products or products[0].price is None


def test_stale_in_stock_markup_gives_way_to_a_pre_order_page():
    body = (
        "<h1>Hochbeet</h1><p class='price'>249,00 €</p>"
        "<p>Pre-order: released 14 March 2026.</p><button>Pre-order now</button>"
    )
    assert _one(_html(body, "", _in_stock_ld())).availability == "preorder"
    with_cart = body.replace("<button>Pre-order now</button>", "<button>Add to cart</button>")
    assert _one(_html(with_cart, "", _in_stock_ld())).availability == "in_stock"


@pytest.mark.parametrize(
    ("line", "sku"),
    [("Réf. ML-SUSP-OPXL", "ML-SUSP-OPXL"), ("Ref. 40815", "40815"), ("Ref. to our policy", "")],
)
def test_an_abbreviated_reference_label_with_a_code(line, sku):
    body = f"<h1>Suspension</h1><p class='price'>1 249,00 €</p><p>{line}</p>"
    assert _one(_html(body)).sku == sku


def test_stale_stock_rule_leaves_pages_with_size_or_colour_pickers_alone():
    body = (
        "<h1>Hochbeet</h1><p class='price'>249,00 €</p>"
        "<div class='swatches'><span>Natur</span><span>Lasiert, ausverkauft</span></div>"
        "<button class='btn'>Kaufen</button>"
    )
    assert _one(_html(body, "", _in_stock_ld())).availability == "in_stock"


def test_a_state_blob_nested_past_the_parsers_stack_is_skipped_not_fatal():
    """A hostile page's JSON state nested 200,000 deep raises RecursionError in json; the blob
    is skipped (as a broken one is) and the page's own markup still gives the product."""
    deep = "[" * 200_000 + "]" * 200_000
    for blob in (
        f'<script type="application/json">{deep}</script>',
        f'<script>window.__INITIAL_STATE__ = {{"a": {deep}}};</script>',
    ):
        html = (
            '<html><body><h1>Deep mug</h1><script type="application/ld+json">'
            '{"@type": "Product", "name": "Deep mug", "offers": {"price": "12.00", '
            f'"priceCurrency": "EUR"}}}}</script>{blob}</body></html>'
        )
        product = _one(html.encode(), "https://shop.example/p/deep-mug")
        assert (product.title, product.price, product.currency) == ("Deep mug", Decimal("12.00"), "EUR")  # fmt: skip


@pytest.mark.parametrize(
    "run",
    [
        "1" * 20_000,
        "1 " * 10_000,
        "1,0" * 7_000,
        "1\u202f000,00 " * 2_000,
        "\u0661\u0662\u0663\u066c\u0664\u0665\u0666\u066b\u0667\u0668 " * 2_000,
    ],
)
def test_a_giant_price_element_is_no_price(run):
    """Hostile store: 20,000 characters of digits and separators in a price element. The phrase
    patterns and price-parser's separator guess are quadratic in such runs (minutes a page
    before), so a price display longer than MAX_SHOWN / a price text longer than MAX_PRICE_TEXT
    is not read at all; the real price elsewhere on the page still is."""
    from pipeline.platforms.extract.amounts import MAX_SHOWN, shown_text
    from pipeline.platforms.prices import MAX_PRICE_TEXT, currency_of

    body = f"<h1>Mug</h1><div class='price'>{run}</div><p class='price'>12,00 €</p>"
    product = _one(_html(body))
    assert (product.price, product.currency) == (Decimal("12.00"), "EUR")
    import lxml.html

    assert shown_text(lxml.html.fromstring(f"<div>{run}</div>")) == ""
    assert len(run) > MAX_SHOWN
    assert parse_price(run + " €", "EUR") is None
    assert len(run) > MAX_PRICE_TEXT
    assert currency_of(run + " EUR") == ""
    assert parse_price("1.299,00 € inkl. MwSt.", "EUR") == Decimal("1299.00")  # real ones stay


def test_thousands_of_price_blocks_are_a_listing_read_no_further():
    """20,000 price-labelled paragraphs (all the same amount, so no three distinct prices to
    call it a listing): past MAX_PRICE_BLOCKS the page is a listing, and collecting stops
    there (each block's ancestors were compared with every block found before: quadratic)."""
    from lxml import html as lxml_html

    from pipeline.platforms.extract.visible import MAX_PRICE_BLOCKS, price_blocks

    blocks = "".join('<p class="price">12,99 €</p>' for _ in range(20_000))
    products, notes = extract_products(_html(f"<h1>Mug</h1>{blocks}"), PAGE)
    assert all(p.price is None for p in products)
    assert any("listing" in note for note in notes)
    tree = lxml_html.fromstring(f"<html><body><h1>Mug</h1>{blocks}</body></html>")
    assert len(price_blocks(tree)) == MAX_PRICE_BLOCKS + 1
