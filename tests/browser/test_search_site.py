"""The search site in a real browser: typing, filters, product + similar, photo upload, keyboard,
phone viewport and no-JavaScript use. Screenshots go to test-artifacts/."""

import io
import re

import pytest
from PIL import Image

from pipeline.embed import embed_images
from pipeline.indexing import build_index
from search.index import reset_index_cache
from tests.browser.conftest import shot
from tests.factories import ImageAssetFactory, ProductFactory, ProductImageFactory, StoreFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ITEMS = [
    ("Red ceramic vase", "Potters", "Vases", "red"),
    ("Crimson glass vase", "Glassco", "Vases", "#b01030"),
    ("Green linen cushion", "Softies", "Cushions", "green"),
    ("Striped salmon pillow", "Softies", "Cushions", "salmon"),
    ("Blue enamel mug", "Potters", "Kitchen", "blue"),
    ("Navy stoneware mug", "Glassco", "Kitchen", "navy"),
    ("Yellow desk lamp", "Brighty", "Lighting", "yellow"),
    ("Golden floor lamp", "Brighty", "Lighting", "gold"),
]


@pytest.fixture
def catalogue(tiny_clip):
    home = StoreFactory(name="Home Goods", slug="home-goods")
    other = StoreFactory(name="Deco Shop", slug="deco")
    products = {}
    for n, (title, brand, category, color) in enumerate(ITEMS):
        product = ProductFactory(
            store=home if n % 2 == 0 else other,
            title=title,
            brand=brand,
            category=category,
            price=10 + n,
            description=f"A {color} {category.lower()} item.",
        )
        asset = ImageAssetFactory(
            thumbnail__color=color,
            thumbnail__width=320,
            thumbnail__height=240,
            width=320,
            height=240,
            placeholder=_placeholder(color),
        )
        ProductImageFactory(product=product, asset=asset)
        products[title] = product
    embed_images()
    assert build_index(force=True).status == "published"
    reset_index_cache()
    return products


def _placeholder(color):
    import base64

    buf = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buf, "JPEG", quality=40)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def card_titles(page):
    return page.locator("#result-list article h3").all_inner_texts()


def test_typing_updates_results_in_place_and_back_works(page, catalogue):
    page.goto("/")
    page.fill("#q", "vase")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=vase"))
    assert "Red ceramic vase" in card_titles(page)
    page.evaluate("window.__sameDocument = true")
    page.fill("#q", "mug")
    page.wait_for_url(re.compile(r"q=mug"))
    page.wait_for_function("document.querySelector('#result-list h3').textContent.includes('mug')")
    assert page.evaluate("window.__sameDocument") is True  # no full reload
    assert all("mug" in t.lower() for t in card_titles(page)[:2])
    page.wait_for_function(
        "[...document.querySelectorAll('img.result-thumb')].every(i => i.complete)"
    )
    shift = page.evaluate(
        """() => new Promise(done => { let total = 0;
        new PerformanceObserver(list => { for (const e of list.getEntries()) total += e.value; })
          .observe({type: 'layout-shift', buffered: true});
        setTimeout(() => done(total), 300); })"""
    )
    assert shift < 0.05
    shot(page, "results-desktop")
    page.go_back()
    page.wait_for_url(re.compile(r"q=vase"))
    page.wait_for_function("document.querySelector('#result-list h3').textContent.includes('ase')")
    assert page.input_value("#q") == "vase"


def test_filter_narrows_results_and_url(page, catalogue):
    page.goto("/search?q=item")
    page.locator('[data-facet="brand"] label', has_text="Softies").click()
    page.wait_for_url(re.compile(r"brand=Softies"))
    page.wait_for_function("[...document.querySelectorAll('#result-list article h3')].length === 2")
    assert sorted(card_titles(page)) == ["Green linen cushion", "Striped salmon pillow"]
    assert page.locator('[data-facet="brand"] input[value="Softies"]').is_checked()
    shot(page, "results-filtered")


def test_sorting_by_price_reorders_in_place_and_is_in_the_url(page, catalogue):
    page.goto("/search?q=item")
    count = len(card_titles(page))
    page.evaluate("window.__noReload = true")
    page.select_option("#sort", "price_desc")
    page.wait_for_url(re.compile(r"sort=price_desc"))
    prices = (
        "[...document.querySelectorAll('#result-list [data-price]')].map(p => +p.dataset.price)"
    )
    page.wait_for_function(f"(() => {{ const p = {prices}; return p.length > 1 && p.every((x, i) => !i || p[i - 1] >= x); }})()")  # fmt: skip
    assert len(card_titles(page)) == count  # the same matches, in another order
    assert page.locator("#sort").input_value() == "price_desc"
    assert page.evaluate("window.__noReload") is True  # htmx swapped the results in place
    shot(page, "results-sorted")


def test_product_page_and_similar_items(page, catalogue):
    page.goto("/search?q=lamp")
    page.locator("#result-list article h3 a").first.click()
    page.wait_for_url(re.compile(r"/products/\d+"))
    assert "lamp" in page.locator("h1").inner_text().lower()
    similar = page.locator("#similar article")
    assert similar.count() >= 3
    assert page.locator('#similar [data-state="not-ready"]').count() == 0
    store_link = page.get_by_role("link", name=re.compile("View at"))
    assert store_link.get_attribute("href").startswith("https://")
    shot(page, "product")
    similar.first.locator("h3 a").click()
    page.wait_for_url(re.compile(r"/products/\d+"))
    assert page.locator("#similar article").count() >= 3


def test_photo_upload_finds_the_look_alike(page, catalogue, tmp_path):
    photo = tmp_path / "green.png"
    Image.new("RGB", (300, 300), "green").save(photo)
    page.goto("/search/image")
    page.set_input_files("#id_image", str(photo))  # picking a file searches at once
    page.wait_for_selector("#result-list article")
    assert card_titles(page)[0] == "Green linen cushion"
    # The shopper's photo is shown above its results, and the results come before the form.
    assert page.locator("[data-query-photo]").is_visible()
    assert page.evaluate(
        "document.querySelector('#results').compareDocumentPosition("
        "document.querySelector('#image-form')) & Node.DOCUMENT_POSITION_FOLLOWING"
    )
    shot(page, "photo-results")


def test_drag_and_drop_a_photo(page, catalogue, tmp_path):
    page.goto("/search/image")
    data = io.BytesIO()
    Image.new("RGB", (200, 200), "blue").save(data, "JPEG")
    page.evaluate(
        """bytes => { const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], 'drop.jpg', {type: 'image/jpeg'}));
        const zone = document.querySelector('[data-dropzone]');
        zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})); }""",
        list(data.getvalue()),
    )
    page.wait_for_selector("#result-list article")
    assert card_titles(page)[0] == "Blue enamel mug"


def test_keyboard_only(page, catalogue):
    page.goto("/search/image")
    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    page.goto("/")
    assert page.evaluate("document.activeElement.id") == "q"  # the search box has focus
    page.keyboard.type("cushion")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=cushion"))
    page.wait_for_selector("#result-list article")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('#result-list') !== null"):
            break
    assert page.evaluate("document.activeElement.matches(':focus-visible')")
    ring = page.evaluate("getComputedStyle(document.activeElement.closest('article')).boxShadow")
    assert ring != "none"  # focus-within ring marks the focused card
    shot(page, "keyboard-focus")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/products/\d+"))


def test_phone_viewport_filters_in_drawer(browser, live_server, site_settings, catalogue):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, base_url=live_server.url, is_mobile=True
    )
    page = context.new_page()
    page.goto("/search?q=mug")
    facets = page.locator("#facets")
    assert not facets.is_visible() or facets.bounding_box()["x"] < 0
    page.get_by_role("button", name="Filters").click()
    page.wait_for_timeout(400)  # drawer slide-in
    assert facets.bounding_box()["x"] >= 0
    shot(page, "phone-filters-open")
    page.get_by_role("button", name=re.compile(r"^Show \d+ results?$")).click()
    cols = page.evaluate(
        "getComputedStyle(document.querySelector('#result-list')).gridTemplateColumns.split(' ').length"
    )
    assert cols == 2
    shot(page, "phone-results")
    context.close()


def test_works_without_javascript(browser, live_server, site_settings, catalogue):
    context = browser.new_context(java_script_enabled=False, base_url=live_server.url)
    page = context.new_page()
    page.goto("/")
    page.fill("#q", "vase")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=vase"))
    assert "Red ceramic vase" in card_titles(page)
    page.locator('[data-facet="brand"] label', has_text="Glassco").click()
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"brand=Glassco"))
    assert card_titles(page)[0] == "Crimson glass vase"
    shot(page, "no-js-results")
    context.close()


def test_dark_mode_follows_the_system_setting(browser, live_server, site_settings, catalogue):
    context = browser.new_context(color_scheme="dark", base_url=live_server.url)
    page = context.new_page()
    page.goto("/search?q=vase")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    channels = [float(c) for c in re.findall(r"[\d.]+", background)[:3]]
    assert max(channels) < 80 or "oklch(0." in background  # a dark base colour
    shot(page, "results-dark")
    context.close()


def test_more_results_load_on_scroll_and_not_ready_notice(page):
    store = StoreFactory()
    for n in range(30):
        ProductImageFactory(product=ProductFactory(store=store, title=f"Blue mug {n}"))
    page.goto("/search?q=mug")
    assert page.locator('[data-state="not-ready"]').is_visible()  # no index in this test
    assert page.locator("#result-list article").count() == 24
    page.locator("#more a").scroll_into_view_if_needed()
    page.wait_for_function("document.querySelectorAll('#result-list article').length === 30")
    assert page.locator("#more a").count() == 0
    assert "page=" not in page.url  # appending does not change the shareable URL
    shot(page, "results-scrolled")


def test_paste_a_photo_searches_with_it(page, catalogue):
    page.goto("/")
    page.locator("[data-photo-search]").click()  # the camera button in the search box
    page.wait_for_url(re.compile(r"/search/image"))
    data = io.BytesIO()
    Image.new("RGB", (200, 200), "blue").save(data, "JPEG")
    page.evaluate(
        """bytes => { const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], 'paste.jpg', {type: 'image/jpeg'}));
        document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true})); }""",
        list(data.getvalue()),
    )
    page.wait_for_selector("#result-list article")
    assert card_titles(page)[0] == "Blue enamel mug"
