"""A page's cards the new way (one-statement hydration, variants only where hydration saw some,
cards written by search.card_html and kept) equal the old way (the ORM's hydration, a variants
query, the Jinja2 card macro) on a small catalogue: no picture, a picture still downloading
behind a ready one, a shared picture first, a sale price, a range, no price, out of stock, a
variant, offers at other stores, and a product changed after its card was kept."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Prefetch
from django.test.utils import CaptureQueriesContext

from catalog.models import Product, ProductImage, ProductVariant
from search import cards, live_rows, selectors
from search.pages import SearchHit, SearchPage, hydrate_hits
from search.ranking import Candidate
from tests.factories import ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    home, other = StoreFactory(slug="home", name="Home & co"), StoreFactory(slug="other")
    rows = [  # title, price, price_max, list_price, availability, pictures
        ("No picture", Decimal("10"), None, None, "in_stock", []),
        ("Sale <b>", Decimal("12.50"), None, Decimal("20"), "in_stock", ["ok"]),
        ("Range", Decimal("5"), Decimal("9"), None, "out_of_stock", ["pending", "ok"]),
        ("No price", None, None, None, "preorder", ["shared", "ok"]),
        ("Variant", Decimal("30"), None, None, "in_stock", ["ok", "ok"]),
    ]
    made = []
    for n, (title, price, price_max, list_price, availability, pictures) in enumerate(rows):
        product = ProductFactory(
            store=home, title=title, price=price, price_max=price_max, list_price=list_price,
            availability=availability, gtin=f"{n:013d}", brand="Acme" if n % 2 else "",
        )  # fmt: skip
        for position, kind in enumerate(pictures):
            image = ProductImageFactory(product=product, position=position)
            if kind == "pending":
                image.asset = None
                image.save()
            elif kind == "shared":
                image.is_shared = True
                image.save()
        if title == "Variant":
            ProductVariant.objects.create(
                product=product, external_id="blue-l", options={"colour": "Blue"},
                price=Decimal("25"), availability="out_of_stock", image=product.images.last(),
            )  # fmt: skip
        if n % 2:
            ProductFactory(store=other, gtin=product.gtin, price=Decimal("9.99"))
        made.append(product)
    return made


def old_hits(window):
    """The page's hits the old way: the ORM's lean hydration and a variants query."""
    images = ProductImage.objects.filter(asset__isnull=False).select_related("asset")
    products = {
        p.pk: p
        for p in Product.objects.filter(pk__in=[c.product_id for c in window])
        .select_related("store")
        .only(*selectors.HIT_PRODUCT_FIELDS)
        .prefetch_related(
            Prefetch("images", queryset=images.order_by("position", "pk"), to_attr="ready_images")
        )
    }
    hits = []
    for cand in window:
        product = products[cand.product_id]
        ready = product.ready_images
        image = next((i for i in ready if i.pk == cand.image_id), ready[0] if ready else None)
        hits.append(SearchHit(product, image, 1.0, cand.visual_score, None, False))
    offers = selectors.offers_for([h.product for h in hits], lean=True)
    for hit in hits:
        hit.variants = list(ProductVariant.objects.filter(product=hit.product).order_by("position"))
        hit.offers = offers[hit.product.pk]
        if hit.image is not None and hit.visual_score is not None:
            hit.variant = next((v for v in hit.variants if v.image_id == hit.image.pk), None)
    return hits


def window_of(products):
    out = []
    for product in products:
        last = product.images.filter(asset__isnull=False).last()
        out.append(Candidate(product.pk, last.pk if last else None, 1.0, 0.3))
    return out


def old_cards(hits, page):
    macro = cards._card_macro()
    shared = cards._shared(page)
    return [str(macro(hit, page, False, shared.product_url)) for hit in hits]


def new_cards(window, page):
    with live_rows.request_scope():
        hits = hydrate_hits(window, {})
    return str(cards.render_cards(hits, page=page, headings=False)), hits


@pytest.mark.parametrize("mode", ["text", "image"])
def test_new_cards_are_the_old_cards(shop, settings, mode):
    settings.DEBUG = False
    cards.clear_cache()
    page, window = SearchPage(mode=mode), window_of(shop)
    html, hits = new_cards(window, page)
    assert html == "".join(old_cards(old_hits(window), page))
    assert [h.product.pk for h in hits] == [p.pk for p in shop]
    assert any(h.variant for h in hits)
    assert any(h.image is None for h in hits)
    assert len(cards._cache) == len(shop)


def test_a_product_changed_after_its_card_was_kept_gets_a_new_card(shop, settings):
    settings.DEBUG = False
    cards.clear_cache()
    page, window = SearchPage(mode="text"), window_of(shop)
    before, _ = new_cards(window, page)
    Product.objects.filter(pk=shop[1].pk).update(
        price=Decimal("11.00"), availability="out_of_stock", title="Sale, now less"
    )
    ProductImage.objects.filter(product=shop[2]).delete()
    after, _ = new_cards(window, page)
    assert after != before
    assert after == "".join(old_cards(old_hits(window), page))
    assert "Sale, now less" in after
    assert "€11.00" in after


def test_variants_are_read_only_for_products_hydration_saw_with_some(shop):
    ids = [p.pk for p in shop]
    with live_rows.request_scope():
        selectors.hydrate_products(ids, lean=True)
        with CaptureQueriesContext(connection) as queries:
            found = selectors.variants_of(ids)
            none = selectors.variants_of(ids[:-1])
    assert len(queries) == 1  # the variant product's; none for a page without one
    assert [v.external_id for v in found[shop[-1].pk]] == ["blue-l"]
    assert none == {pk: [] for pk in ids[:-1]}
    with CaptureQueriesContext(connection) as queries:  # outside a request: always read
        assert selectors.variants_of(ids[:-1]) == none
    assert len(queries) == 1
