"""Result cards are rendered by Jinja2 (search.cards) and must write exactly the HTML the Django
card wrote: the Django card is kept here (reference/_product_card.html) and both render the same
hits (quotes, markup and right-to-left text in titles, variants, sale prices and ranges, offers
at other stores, no photo, out of stock, every currency's digits, text/photo pages, ?debug=1)."""

from decimal import Decimal
from pathlib import Path

import pytest
from django.template import engines

from catalog.models import ProductVariant
from search import cards, selectors
from search.pages import SearchHit, SearchPage
from tests.factories import ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db

REFERENCE = (Path(__file__).parent / "reference" / "_product_card.html").read_text("utf-8")

TITLES = [
    "Plain mug",
    'Tom\'s "best" <script>alert(1)</script> & co',
    "كوب قهوة أزرق",
    "Mug {{ 7*7 }} {% now %} ' \" ` =",
]


def hits():
    home, other = StoreFactory(slug="home", name="O'Brien & Sons"), StoreFactory(slug="other")
    made = []
    for i, title in enumerate(TITLES):
        product = ProductFactory(
            store=home,
            title=title,
            brand=["", "Acme <b>", "ماركة", "Q&A"][i],
            price=[Decimal("12.5"), None, Decimal("2490"), Decimal("1234.5")][i],
            price_max=[Decimal("15"), None, None, None][i],
            list_price=[Decimal("20"), None, Decimal("2990"), None][i],
            currency=["EUR", "EUR", "JPY", "KWD"][i],
            availability=["in_stock", "out_of_stock", "in_stock", "preorder"][i],
            gtin=f"{i:013d}",
        )
        if i != 1:
            image = ProductImageFactory(product=product)
            image.asset.placeholder = "data:image/jpeg;base64,AA'\"<>" if i == 0 else ""
            image.asset.save()
        ProductFactory(
            store=other, gtin=product.gtin, price=Decimal("9.99"), currency=product.currency
        )
    found = selectors.hydrate_products([p.pk for p in home.products.all()])
    products = [found[pk] for pk in sorted(found)]
    offers = selectors.offers_for(products)
    for n, product in enumerate(products):
        image = product.ready_images[0] if product.ready_images else None
        variant = None
        if n == 2 and image is not None:
            variant = ProductVariant.objects.create(
                product=product, external_id="v 1/é?&", title="Blue / L", options={"colour": "Blue <x>", "size": "L"},
                price=Decimal("2000"), list_price=Decimal("2500"), availability="out_of_stock", image=image,
            )  # fmt: skip
        made.append(
            SearchHit(
                product, image, 0.0327 + n, 0.31 if n % 2 else None, -4.25 if n else None,
                exact=n == 3, variant=variant, offers=offers[product.pk] if n != 3 else [],
            )
        )  # fmt: skip
    return made


@pytest.mark.parametrize("mode", ["text", "image", "similar"])
@pytest.mark.parametrize("debug", [False, True])
def test_jinja2_cards_are_the_django_cards_byte_for_byte(mode, debug):
    django_card = engines["django"].from_string(REFERENCE)
    page = SearchPage(mode=mode)
    found = hits()
    assert len(found) == len(TITLES)
    for hit in found:
        expected = django_card.render({"hit": hit, "page": page, "debug": debug})
        assert cards.render_card(hit, page=page, debug=debug) == expected


def test_a_card_without_a_page_in_its_context(client):
    hit = hits()[0]
    expected = engines["django"].from_string(REFERENCE).render({"hit": hit})
    assert cards.render_card(hit) == expected


def test_every_value_is_escaped():
    hit = next(h for h in hits() if "<script>" in h.product.title)
    html = cards.render_card(hit, page=SearchPage(mode="text"))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "Tom&#x27;s &quot;best&quot;" in html
    assert "&lt;/script&gt; &amp; co</bdi>" in html
