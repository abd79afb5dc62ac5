"""Results a shopper can trust (issue 11): only hits that match the words or clear the relevance
floor are listed, counted, faceted and sorted; keyword matches come before look-alikes; a query
with nothing gets a real empty state and spelling help from the catalogue's own words.

Planted vectors: products' stored image embeddings and the query's text vector are chosen here,
and the floor's calibration (random text queries) is planted too, so the outcome is known.
"""

import numpy as np
import pytest
from bs4 import BeautifulSoup
from django.conf import settings

from pipeline.indexing import build_index, calibration
from search import encoder, services, spelling
from search.index import get_index, reset_index_cache
from search.models import Embedding
from search.selectors import SearchFilters
from tests.factories import ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db
DIM = 32


def unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def plant(product, vector):
    image = ProductImageFactory(product=product)
    Embedding.objects.create(
        asset=image.asset,
        model_name=settings.MEEPO_CLIP_MODEL,
        dim=DIM,
        vector=unit(vector).astype("<f4").tobytes(),
    )


def near(q, cosine, rng):
    other = rng.normal(size=DIM)
    other -= other.dot(q) * q
    return cosine * q + np.sqrt(1 - cosine**2) * unit(other)


@pytest.fixture
def shop(monkeypatch):
    """40 noise products, 3 that look like a teapot (no 'teapot' in their words), 1 titled
    'teapot' that looks like nothing in particular, and a query vector for 'teapot'."""
    rng = np.random.default_rng(11)
    teapot_vector = unit(rng.normal(size=DIM))
    store = StoreFactory(slug="home")
    products = {"noise": [], "looks": []}
    for n in range(40):
        product = ProductFactory(
            store=store, title=f"Steel fork {n}", category="Cutlery", price=5 + n
        )
        plant(product, rng.normal(size=DIM))
        products["noise"].append(product)
    for n, cosine in enumerate((0.9, 0.88, 0.86)):
        product = ProductFactory(
            store=store, title=f"Round kettle {n}", category="Tea", price=40 - n
        )
        plant(product, near(teapot_vector, cosine, rng))
        products["looks"].append(product)
    products["words"] = ProductFactory(
        store=store, title="Sage teapot", category="Tea", brand="Nordhus", price=61
    )
    plant(products["words"], rng.normal(size=DIM))
    noise_queries = unit(rng.normal(size=(128, DIM)))
    monkeypatch.setattr(calibration, "_random_query_vectors", lambda: (noise_queries, []))
    assert build_index(force=True).status == "published"
    reset_index_cache()
    # Any other text is a meaningless query: one random direction (like CLIP on gibberish),
    # which test_gibberish_finds_nothing checks the floor drops entirely.
    meaningless = unit(np.random.default_rng(sum(map(ord, "xyzzyq"))).normal(size=DIM))

    def fake_encode(text):
        return teapot_vector if text == "teapot" else meaningless

    monkeypatch.setattr(encoder, "encode_text", fake_encode)
    return products


def soup(response):
    return BeautifulSoup(response.content, "html.parser")


def test_index_manifest_holds_the_noise_calibration(shop):
    noise = get_index().noise
    assert noise is not None
    assert len(noise.best) == 128
    assert get_index().manifest.relevance["percentiles"]["95"] == pytest.approx(
        noise.threshold(95), abs=1e-4
    )


def test_floor_keeps_keyword_and_look_alike_matches_only_and_counts_them(shop):
    page = services.search_products(query="teapot")
    ids = [h.product.pk for h in page.hits]
    # The keyword match first, then the look-alikes by similarity; none of the 40 forks.
    assert ids == [shop["words"].pk] + [p.pk for p in shop["looks"]]
    assert page.total == 4
    assert not page.has_more
    assert [h.starts_similar for h in page.hits] == [False, True, False, False]
    # Facets count only the results that cleared the floor.
    assert dict((v, n) for v, _, n in page.facets["category"]) == {"Tea": 4}


def test_sorting_by_price_only_reorders_results_above_the_floor(shop):
    page = services.search_products(query="teapot", sort="price_asc")
    prices = [h.product.price for h in page.hits]
    assert prices == sorted(prices)
    assert {h.product.pk for h in page.hits} == {shop["words"].pk} | {p.pk for p in shop["looks"]}


def test_gibberish_finds_nothing(shop):
    page = services.search_products(query="xyzzyq")
    assert page.hits == []
    assert page.total == 0
    assert page.facets == {}


def test_disabling_the_floor_brings_the_filler_back(shop, settings):
    settings.MEEPO_RELEVANCE_FLOOR = False
    assert services.search_products(query="xyzzyq").total > 20


def test_misspelt_query_shows_the_correction_and_offers_the_original(shop):
    page = services.search_products(query="teapto")
    assert page.query == "teapot"
    assert page.corrected_from == "teapto"
    assert page.hits[0].product.pk == shop["words"].pk
    assert services.search_products(query="teapto", spell=False).total == 0


def test_spelling_never_corrects_identifiers_brands_or_known_words(shop):
    vocab = spelling.get_vocabulary()
    assert "teapot" in vocab
    assert spelling.suggest("nordhus teapot", vocab) is None  # a brand that exists
    assert spelling.suggest("SKU12345", vocab) is None
    assert spelling.suggest("4006381333931", vocab) is None
    assert spelling.suggest("teap", vocab) is None  # still typing "teapot"
    assert spelling.suggest("sage from nordhus", vocab) is None  # stopwords are not typos
    assert spelling.suggest("sage teapto", vocab) == "sage teapot"
    assert spelling.suggest("nordhsu", vocab) == "nordhus"


def test_vocabulary_file_is_written_next_to_the_index(shop):
    assert (get_index().path / spelling.VOCABULARY_FILE).is_file()
    assert get_index().manifest.vocabulary_words > 0


def test_results_page_counts_in_a_live_region_outside_the_swapped_results(client, shop):
    page = soup(client.get("/search", {"q": "teapot"}))
    status = page.select_one("#result-status")
    assert status["role"] == "status"
    assert status.find_parent(id="results") is None
    assert status.get_text(strip=True) == "4 results for “teapot”"
    assert page.select_one('[data-section="similar"]').get_text() == "Similar looking items"
    assert page.select_one("h1") is not None
    hints = [e["data-match"] for e in page.select("#result-list [data-match]")]
    assert hints == ["words", "looks", "looks", "looks"]


def test_htmx_answer_updates_the_live_region_text_only(client, shop):
    response = client.get("/search", {"q": "teapot"}, HTTP_HX_REQUEST="true")
    status = soup(response).select_one("#result-status")
    assert status["hx-swap-oob"] == "innerHTML"
    assert status.get_text(strip=True) == "4 results for “teapot”"


def test_empty_state_and_did_you_mean_on_the_page(client, shop):
    empty = soup(client.get("/search", {"q": "xyzzyq"}))
    assert empty.select_one('[data-state="no-results"]') is not None
    assert empty.select_one("#result-status").get_text(strip=True) == "No results for “xyzzyq”"
    corrected = soup(client.get("/search", {"q": "teapto"}))
    note = corrected.select_one('[data-state="corrected"]')
    assert "Showing results for teapot" in note.get_text(" ", strip=True)
    assert note.select_one("a")["href"] == "/search?q=teapto&spell=off"


def test_debug_shows_scores_and_signals(client, shop):
    page = soup(client.get("/search", {"q": "teapot", "debug": "1"}))
    assert page.select_one('[data-signal="keyword"]') is not None
    assert page.select_one("[data-score]") is not None


def test_api_reports_the_count_and_the_correction(client, shop):
    body = client.get("/api/search", {"q": "teapto"}).json()
    assert body["total"] == 4  # the results for "teapot"
    assert body["query"] == "teapot"
    assert body["corrected_from"] == "teapto"
    assert client.get("/api/search", {"q": "teapto", "spell": "off"}).json()["total"] == 0


def test_product_page_links_back_to_the_results_it_came_from(client, shop):
    product = shop["words"]
    ProductImageFactory(product=product, position=1)  # a second photo: a gallery
    page = soup(
        client.get(
            f"/products/{product.pk}", HTTP_REFERER="http://testserver/search?q=teapot&sort=newest"
        )
    )
    back = page.select_one("[data-back]")
    assert back["href"] == "/search?q=teapot&sort=newest"
    assert "teapot" in back.get_text()
    assert page.select_one("#header-q")["value"] == "teapot"
    # From elsewhere (another site, or none): no back link.
    other = soup(client.get(f"/products/{product.pk}", HTTP_REFERER="https://evil.example/search"))
    assert other.select_one("[data-back]") is None
    gallery = page.select("[data-gallery] [data-gallery-src]")
    assert len(gallery) == 2
    assert gallery[0]["aria-current"] == "true"
    assert gallery[1]["aria-label"] == "Photo 2 of 2"


def test_photo_page_warns_before_upload_when_no_index_is_ready(client):
    page = soup(client.get("/search/image"))
    assert page.select_one('[data-state="not-ready"]') is not None


def test_htmx_answer_refreshes_the_filters_count(client, shop):
    response = client.get("/search", {"q": "teapot", "brand": "Nordhus"}, HTTP_HX_REQUEST="true")
    count = soup(response).select_one("#filters-count")
    assert count["hx-swap-oob"] == "innerHTML"
    assert count.select_one(".badge").get_text() == "1"


def test_photo_page_has_no_warning_when_the_index_is_ready(client, shop):
    assert soup(client.get("/search/image")).select_one('[data-state="not-ready"]') is None


def test_a_chosen_facet_keeps_its_siblings_counted(shop):
    # Ticking "Cutlery" for "teapot" finds nothing, but the category facet still offers Tea (4):
    # counts within a facet ignore that facet's own choice (OR within a facet).
    page = services.search_products(query="teapot", filters=SearchFilters(categories=("Cutlery",)))
    assert page.total == 0
    assert {v: n for v, _, n in page.facets["category"]} == {"Tea": 4}
    browse = services.search_products(query="", filters=SearchFilters(categories=("Tea",)))
    assert {v: n for v, _, n in browse.facets["category"]} == {"Cutlery": 40, "Tea": 4}
    both = services.search_products(query="", filters=SearchFilters(categories=("Tea", "Cutlery")))
    assert both.total == 44


def test_product_page_shows_more_similar_products_on_demand(client, shop):
    product = shop["noise"][0]
    first = soup(client.get(f"/products/{product.pk}"))
    assert len(first.select("#similar article")) == 12
    more = first.select_one("[data-more-similar]")["href"]
    assert more == "?similar=2#similar"
    second = soup(client.get(f"/products/{product.pk}?similar=2"))
    assert len(second.select("#similar article")) == 24
    clamped = soup(client.get(f"/products/{product.pk}?similar=abc"))
    assert len(clamped.select("#similar article")) == 12


def _jpeg_upload():
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    data = io.BytesIO()
    Image.new("RGB", (64, 64), "olive").save(data, "JPEG")
    return SimpleUploadedFile("photo.jpg", data.getvalue(), content_type="image/jpeg")


def test_photo_results_have_a_url_that_pages_and_expires(client, shop, monkeypatch, settings):
    stored = Embedding.objects.get(asset__product_images__product=shop["looks"][0])
    vector = np.frombuffer(bytes(stored.vector), dtype="<f4").copy()

    class FakeEncoder:
        def encode_images(self, images):
            return vector[None, :]

    monkeypatch.setattr(encoder, "get_encoder", lambda: FakeEncoder())
    first = soup(client.post("/search/image", {"image": _jpeg_upload(), "limit": "2"}))
    assert len(first.select("#result-list article")) == 2
    assert first.select_one("[data-query-photo]")["src"].startswith("data:image/jpeg;base64,")
    link = first.select_one("[data-photo-link]")["href"]
    token = link.split("photo=")[1]
    # Only the vector is kept, as a .npy under the data directory; never the photo.
    kept = list((settings.MEEPO_DATA_DIR / "photo-queries").iterdir())
    assert [p.name for p in kept] == [f"{token}.npy"]
    again = soup(client.get("/search/image", {"photo": token, "limit": "2"}))
    assert [a["data-product-id"] for a in again.select("#result-list article")] == [
        a["data-product-id"] for a in first.select("#result-list article")
    ]
    page2 = soup(client.get("/search/image", {"photo": token, "limit": "2", "page": "2"}))
    ids2 = {a["data-product-id"] for a in page2.select("#result-list article")}
    assert len(ids2) == 2
    assert not ids2 & {a["data-product-id"] for a in first.select("#result-list article")}
    assert first.select_one("[data-more-photo]")["href"] == f"?photo={token}&page=2&limit=2"
    for bad in ("x" * 22, "../../etc/passwd", ""):
        expired = soup(client.get("/search/image", {"photo": bad}))
        assert expired.select_one("#result-list") is None
    assert soup(client.get("/search/image", {"photo": "A" * 22})).select_one(
        '[data-state="expired"]'
    )
