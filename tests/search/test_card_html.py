"""search.card_html writes what the card template writes (with debug off), byte for byte, over
hits that take every branch of the template."""

import itertools
from decimal import Decimal
from types import SimpleNamespace

import pytest

from catalog.models import ProductVariant
from search import card_html, cards, selectors
from search.pages import SearchHit, SearchPage
from tests.factories import ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db

PRICES = [  # price, price_max, list_price, currency
    (Decimal("12.5"), Decimal("15"), Decimal("20"), "EUR"),
    (Decimal("12.50"), None, None, "EUR"),
    (None, None, Decimal("3"), "EUR"),
    (Decimal("2490"), None, Decimal("2990"), "JPY"),
    (Decimal("1234.5"), Decimal("1234.5"), Decimal("1000"), "KWD"),
]


def shop():
    home = StoreFactory(slug="home", name="O'Brien & <Sons>")
    others = [StoreFactory(slug=f"other{i}") for i in range(2)]
    made = []
    for n, (price, price_max, list_price, currency) in enumerate(PRICES * 3):
        product = ProductFactory(
            store=home, title=['Tom\'s "mug" <b>', "كوب", "Plain"][n % 3],
            brand=["", "Acme & co"][n % 2], price=price, price_max=price_max,
            list_price=list_price, currency=currency,
            availability=["in_stock", "out_of_stock", "preorder", ""][n % 4], gtin=f"{n:013d}",
        )  # fmt: skip
        if n % 5:
            image = ProductImageFactory(product=product)
            image.asset.placeholder = ["", "data:image/webp;base64,AA'\"<>"][n % 2]
            if n % 7 == 3:
                image.asset.thumbnail = ""
            image.asset.save()
        for i, store in enumerate(others[: n % 3]):
            ProductFactory(
                store=store, gtin=product.gtin, price=Decimal("9.99") + i,
                currency=[currency, "USD"][n % 2 and i], availability=["in_stock", "out_of_stock"][n % 4 == 1],
            )  # fmt: skip
        made.append(product.pk)
    return made


def hits():
    found = selectors.hydrate_products(shop(), lean=True)
    products = [found[pk] for pk in sorted(found)]
    offers = selectors.offers_for(products, lean=True)
    out = []
    for n, product in enumerate(products):
        image = product.ready_images[0] if product.ready_images else None
        for variant_kind in range(3 if image else 1):
            variant = None
            if variant_kind:
                variant = ProductVariant.objects.create(
                    product=product, external_id=f"v {n}/é?&{variant_kind}", title="Blue / L",
                    options={"colour": "Blue <x>", "size": "L"}, image=image,
                    price=[None, Decimal("2000")][variant_kind - 1],
                    list_price=Decimal("2500"), availability=["", "out_of_stock"][variant_kind - 1],
                )  # fmt: skip
            out.append(
                SearchHit(
                    product, image, 0.5, 0.3 if n % 2 else None, 1.0 if n % 3 else None,
                    exact=n % 4 == 0, variant=variant, offers=offers[product.pk],
                )
            )  # fmt: skip
    return out


def test_the_writer_writes_what_the_card_template_writes():
    macro = cards._card_macro()
    found = hits()
    assert len(found) > 30
    seen = set()
    for hit, mode in itertools.product(found, ["text", "image", None]):
        page = SearchPage(mode=mode) if mode else None
        shared = cards._shared(page)
        expected = str(macro(hit, page, False, shared.product_url))
        assert card_html.write_card(hit, mode == "text", shared.product_url) == expected
        seen.add((hit.image is not None, bool(hit.variant), hit.other_stores, mode))
    assert len(seen) > 12  # the branches were taken


def test_cards_are_written_by_it_and_kept(settings):
    settings.DEBUG = False
    hit = hits()[1]
    page = SearchPage(mode="text")
    cards.clear_cache()
    first = cards.render_card(hit, page=page)
    assert first == str(cards._card_macro()(hit, page, False, cards._shared(page).product_url))
    assert cards.render_card(hit, page=page) == first
    assert len(cards._cache) == 1


def test_an_unknown_availability_or_empty_offer_list_writes_nothing_extra():
    hit = hits()[0]
    hit.product.availability = "discontinued"
    hit.offers = []
    shared = cards._shared(SimpleNamespace(mode="text"))
    assert card_html.write_card(hit, True, shared.product_url) == str(
        cards._card_macro()(hit, SimpleNamespace(mode="text"), False, shared.product_url)
    )


def test_prices_are_what_the_price_macro_writes(settings):
    from search import jinja_env

    macro = jinja_env.environment().get_template("partials/_price.html").module.price_html
    values = [None, Decimal("0"), Decimal("9.99"), Decimal("12.5"), Decimal("12.50"), Decimal("1234567.891")]  # fmt: skip
    for language in ("en", "de", "ar"):
        settings.LANGUAGE_CODE = language
        for currency in ("EUR", "JPY", "KWD", "USD"):
            for price, price_max, list_price in itertools.product(values[1:], values, values):
                expected = str(macro(price, price_max, list_price, currency))
                assert card_html.write_price(price, price_max, list_price, currency) == expected
