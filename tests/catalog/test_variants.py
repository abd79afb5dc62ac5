"""catalog.services with issue-9 data: identifiers, sale prices, variants and field sources."""

from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from catalog import services
from catalog.models import Product, ProductVariant, combined_availability
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

RED = "https://cdn.example/red.jpg"
BLUE = "https://cdn.example/blue.jpg"


def _variant(ext, **kw):
    return services.VariantData(external_id=ext, **kw)


def _item(ext="p1", **kw):
    data = {
        "external_id": ext,
        "url": f"https://s.example/{ext}",
        "title": "Linen shirt",
        "price": Decimal("10.00"),
        "currency": "EUR",
        "availability": "out_of_stock",
        "image_urls": [RED, BLUE],
        "sku": "SHIRT-1",
        "gtin": "4006381333931",
        "mpn": "LS-100",
        "sources": {"price": "json-ld", "gtin": "microdata"},
        "variants": [
            _variant(
                "v-red",
                title="Red / M",
                options={"Colour": "Red", "Size": "M"},
                sku="SHIRT-1-RED",
                gtin="4006381333948",
                price=Decimal("10.00"),
                list_price=Decimal("14.00"),
                availability="out_of_stock",
                image_url=RED,
                url="https://s.example/p1?variant=1",
            ),
            _variant(
                "v-blue",
                title="Blue / M",
                options={"Colour": "Blue", "Size": "M"},
                price=Decimal("15.00"),
                availability="in_stock",
                image_url=BLUE,
                url="https://s.example/p1?variant=2",
            ),
        ],
    }
    data.update(kw)
    return services.ProductData(**data)


def _upsert(*items):
    return services.upsert_products(
        store=StoreFactory(slug="s"), items=items, seen_at=timezone.now()
    )


def test_upsert_stores_identifiers_sources_range_and_variants():
    _upsert(_item())
    product = Product.objects.get()
    assert (product.sku, product.gtin, product.mpn) == ("SHIRT-1", "4006381333931", "LS-100")
    assert (product.price, product.price_max) == (Decimal("10.00"), Decimal("15.00"))
    # The cheapest variant is on sale and the item states no list price of its own.
    assert product.list_price == Decimal("14.00")
    assert product.is_on_sale
    assert product.field_sources == {"price": "json-ld", "gtin": "microdata"}
    red, blue = product.variants.all()
    assert (red.external_id, red.options, red.sku, red.gtin) == (
        "v-red",
        {"Colour": "Red", "Size": "M"},
        "SHIRT-1-RED",
        "4006381333948",
    )
    assert red.image.source_url == RED
    assert blue.image.source_url == BLUE
    assert (red.position, blue.position) == (0, 1)
    assert red.label == "Red / M"
    assert red.is_on_sale
    assert not blue.is_on_sale


def test_some_variant_in_stock_means_the_product_is_in_stock():
    _upsert(_item())  # the item itself says out of stock, the blue variant is in stock
    assert Product.objects.get().availability == Product.Availability.IN_STOCK
    assert Product.objects.in_stock().count() == 1


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["out_of_stock", "in_stock"], "in_stock"),
        (["out_of_stock", "preorder"], "preorder"),
        (["out_of_stock", "out_of_stock"], "out_of_stock"),
        (["out_of_stock", "unknown"], "unknown"),
        ([], "unknown"),
    ],
)
def test_combined_availability(values, expected):
    assert combined_availability(values) == expected


def test_variants_with_unknown_stock_keep_the_products_own_availability():
    variants = [_variant("a", price=Decimal("5")), _variant("b", price=Decimal("5"))]
    _upsert(_item(availability="in_stock", variants=variants))
    product = Product.objects.get()
    assert product.availability == "in_stock"
    assert product.price_max is None  # same price everywhere: no range


def test_recrawl_with_unchanged_variants_is_unchanged_and_writes_nothing():
    store = StoreFactory()
    now = timezone.now()
    services.upsert_products(store=store, items=[_item()], seen_at=now)
    before = list(ProductVariant.objects.values_list("pk", "updated_at"))
    again = services.upsert_products(store=store, items=[_item()], seen_at=now)
    dry = services.classify_products(store=store, items=[_item()])
    assert (again.unchanged, again.updated) == (1, 0)
    assert (dry.unchanged, dry.updated) == (1, 0)
    assert list(ProductVariant.objects.values_list("pk", "updated_at")) == before


@pytest.mark.parametrize(
    "change",
    [
        {"sku": "SHIRT-2"},
        {"gtin": "4006381333948"},
        {"list_price": Decimal("20.00")},
        {"sources": {"price": "visible-text"}},
        {"variants": []},
    ],
)
def test_a_change_in_any_new_field_is_an_update(change):
    store = StoreFactory()
    services.upsert_products(store=store, items=[_item()], seen_at=timezone.now())
    dry = services.classify_products(store=store, items=[_item(**change)])
    counts = services.upsert_products(store=store, items=[_item(**change)], seen_at=timezone.now())
    assert (dry.updated, counts.updated) == (1, 1)


def test_variant_price_stock_changes_update_rows_and_keep_their_ids():
    store = StoreFactory()
    services.upsert_products(store=store, items=[_item()], seen_at=timezone.now())
    red_id = ProductVariant.objects.get(external_id="v-red").pk
    item = _item()
    item.variants[0].availability = "in_stock"
    item.variants[0].price = Decimal("9.00")
    del item.variants[1]
    counts = services.upsert_products(store=store, items=[item], seen_at=timezone.now())
    assert counts.updated == 1
    red = ProductVariant.objects.get()
    assert (red.pk, red.price, red.availability) == (red_id, Decimal("9.00"), "in_stock")
    product = Product.objects.get()
    # The item's own price wins over the variants' minimum; the range ends at the dearest.
    assert (product.price, product.price_max) == (Decimal("10.00"), None)


def test_variant_image_not_among_the_products_images_is_kept_as_url_only():
    item = _item()
    item.variants[0].image_url = "https://cdn.example/elsewhere.jpg"
    _upsert(item)
    red = ProductVariant.objects.get(external_id="v-red")
    assert (red.image, red.image_url) == (None, "https://cdn.example/elsewhere.jpg")


def test_variants_without_ids_are_keyed_by_sku_then_position():
    variants = [
        _variant("", sku="A", price=Decimal("5")),
        _variant("", price=Decimal("6")),
        _variant("", sku="A", price=Decimal("7")),  # the same SKU again: the last copy wins
    ]
    _upsert(_item(variants=variants))
    assert sorted(ProductVariant.objects.values_list("external_id", "price")) == [
        ("#1", Decimal("6.00")),
        ("A", Decimal("7.00")),
    ]


def test_list_price_not_above_the_price_is_no_sale():
    _upsert(_item(variants=[], list_price=Decimal("10.00")))
    product = Product.objects.get()
    assert product.list_price is None
    assert not product.is_on_sale


def test_plain_items_keep_their_old_content_hash():
    """Products stored before issue 9 are not all rewritten by the first crawl after it."""
    plain = services.ProductData(external_id="x", url="https://s/x", title="Mug")
    assert (
        plain.content_hash()
        == (
            services.ProductData(external_id="x", url="https://s/x", title="Mug", sources={})
        ).content_hash()
    )
    data = services.ProductData(external_id="x", url="https://s/x", title="Mug", gtin="1")
    assert data.content_hash() != plain.content_hash()


@pytest.mark.only_on("sqlite")
def test_adding_columns_kept_the_full_text_triggers():
    """Migration 0005 rebuilt catalog_product (SQLite); the FTS triggers must still be there."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        names = {row[0] for row in cursor.fetchall()}
    assert {"catalog_product_fts_ai", "catalog_product_fts_ad", "catalog_product_fts_au"} <= names


def test_three_decimal_prices_are_kept_exact_and_their_changes_detected():
    store = StoreFactory()
    kwd = _item(currency="KWD", price=Decimal("12.345"), variants=[], list_price=None)
    services.upsert_products(store=store, items=[kwd], seen_at=timezone.now())
    assert Product.objects.get().price == Decimal("12.345")
    cheaper = _item(currency="KWD", price=Decimal("12.344"), variants=[], list_price=None)
    assert services.classify_products(store=store, items=[cheaper]).updated == 1
    services.upsert_products(store=store, items=[cheaper], seen_at=timezone.now())
    assert Product.objects.get().price == Decimal("12.344")


def test_two_decimal_prices_hash_as_before():
    """Hashes stored before prices had three decimals stay valid (no mass rewrite)."""
    item = services.ProductData(
        external_id="x", url="https://s/x", title="Mug", price=Decimal("9.5")
    )
    same = services.ProductData(
        external_id="x", url="https://s/x", title="Mug", price=Decimal("9.500")
    )
    assert item.content_hash() == same.content_hash()
