"""Keyword search through the index version's tantivy index (search.keyword_engine): the same
contract as the database path (run under both), exact against the live catalogue (products
changed, added or switched off after the build), and the database as its fallback."""

import os
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from bench.planted_index import publish_arrays
from catalog.models import Product
from search import fts, keyword_delta, keyword_engine, selectors
from search.keyword_index import KEYWORD_DIR, write_keyword_index
from search.selectors import SearchFilters
from tests.factories import ProductFactory, StoreFactory

pytestmark = pytest.mark.django_db
MODEL = "test-model"
ANY = SearchFilters()


def publish_with_keywords(settings):
    """Publish a tiny index version and its keyword index over the products so far, written
    as if an hour ago went by since they last changed (so they are in the index, not the delta)."""
    settings.MEEPO_CLIP_MODEL = MODEL
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0
    Product.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    vectors = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    path, _, _ = publish_arrays(np.arange(1, 5, dtype=np.int64), vectors, model=MODEL)
    write_keyword_index(path)
    keyword_delta.forget_cache()
    return path


@pytest.fixture(params=["database", "auto"])
def engine(request, settings):
    """Run a test under both keyword engines: call the returned function once the catalogue
    is written; under "auto" it publishes the keyword index (and checks the engine answers)."""
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = request.param

    def ready():
        if request.param == "auto":
            publish_with_keywords(settings)
            assert keyword_engine.current() is not None
        else:
            assert keyword_engine.current() is None

    ready.name = request.param
    return ready


def ids(query, filters=ANY, **kwargs):
    return [pid for pid, _ in selectors.keyword_hits(query=query, filters=filters, limit=10, **kwargs)]  # fmt: skip


def test_minus_words_leave_out_products(engine):
    ProductFactory(title="Ceramic mug")
    enamel = ProductFactory(title="Enamel mug")
    ProductFactory(title="Mug", description="Hand-thrown ceramics")  # stemmed like the query
    engine()
    assert ids("mug", exclude=("ceramic",)) == [enamel.pk]
    assert selectors.keyword_count(query="mug", filters=ANY, exclude=("ceramic",)) == 1
    assert selectors.keyword_count(query="mug", filters=ANY) == 3


def test_title_ranks_above_brand_above_description(engine):
    in_text = ProductFactory(title="Serving set", description="Comes with a walnut tray")
    in_title = ProductFactory(title="Walnut bowl")
    in_brand = ProductFactory(title="Bowl", brand="Walnut")
    engine()
    assert ids("walnut") == [in_title.pk, in_brand.pk, in_text.pk]


def test_stems_fold_accents_and_complete_the_last_word(engine):
    crepe = ProductFactory(title="Crêpe pans")
    lamp = ProductFactory(title="Walnut desk lamp")
    shade = ProductFactory(title="Lampshade for a desk")
    engine()
    assert ids("crepe pan") == [crepe.pk]
    assert set(ids("desk lam")) == {lamp.pk, shade.pk}
    assert ids("desk lam ") == []  # a finished word is not a prefix
    assert set(ids("desk la")) == set()  # two letters are not yet a prefix
    assert ids("lamps walnut") == [lamp.pk]


def test_any_word_matches_either(engine):
    a = ProductFactory(title="Oak table")
    b = ProductFactory(title="Linen pillow")
    ProductFactory(title="Glass vase")
    engine()
    assert ids("oak pillow", any_word=True) != []
    assert set(ids("oak pillow", any_word=True)) == {a.pk, b.pk}
    assert ids("oak pillow") == []


def test_every_filter_applies(engine):
    shop = StoreFactory(slug="shop")
    keep = ProductFactory(store=shop, title="Oak table", brand="Woody", category="Dining", price=100)  # fmt: skip
    ProductFactory(store=shop, title="Oak table two", brand="Other", category="Dining", price=100)
    ProductFactory(store=shop, title="Oak table dear", brand="Woody", category="Dining", price=900)
    ProductFactory(store=shop, title="Oak table gone", brand="Woody", category="Dining", price=100, is_active=False)  # fmt: skip
    ProductFactory(store=shop, title="Oak table none", brand="Woody", category="Dining", price=50, availability=Product.Availability.OUT_OF_STOCK)  # fmt: skip
    ProductFactory(title="Oak table elsewhere", brand="Woody", category="Dining", price=100)
    engine()
    filters = SearchFilters(
        stores=("shop",), brands=("Woody",), categories=("Dining",), max_price=200, in_stock=True
    )
    assert ids("oak", filters) == [keep.pk]
    structural = SearchFilters(stores=("shop",), brands=("Woody",), categories=("Dining",))
    assert selectors.keyword_count(query="oak", filters=structural, exclude=()) == 3
    assert ids("oak", SearchFilters(stores=("nowhere",))) == []


def test_exact_title_and_matching_any(engine):
    lamp = ProductFactory(title="Walnut Desk Lamp")
    ProductFactory(title="Walnut desk lamp shade")
    cushion = ProductFactory(title="Cushion", description="cotton")
    creme = ProductFactory(title="Crème throw")
    plain = ProductFactory(title="Plain throw")
    engine()
    assert selectors.exact_match_ids(query="walnut desk LAMP", filters=ANY) == [lamp.pk]
    assert selectors.exact_match_ids(query="walnut desk", filters=ANY) == []
    found = selectors.products_matching_any(("cushions", "creme"), [cushion.pk, creme.pk, plain.pk])  # fmt: skip
    assert found == {cushion.pk, creme.pk}


def test_freshness_against_the_live_catalogue(settings):
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    old = ProductFactory(title="Brass kettle")
    gone = ProductFactory(title="Brass candle")
    cheap = ProductFactory(title="Brass bowl", price=10)
    publish_with_keywords(settings)
    assert set(ids("brass")) == {old.pk, gone.pk, cheap.pk}
    added = ProductFactory(title="Brass mirror", price=20)  # after the build
    old.title = "Copper kettle"
    old.save()
    gone.is_active = False
    gone.save()
    assert set(ids("brass")) == {cheap.pk, added.pk}
    assert ids("copper") == [old.pk]
    assert ids("mirror") == [added.pk]
    assert selectors.keyword_count(query="brass", filters=ANY) == 2
    assert selectors.exact_match_ids(query="copper kettle", filters=ANY) == [old.pk]
    assert selectors.exact_match_ids(query="brass kettle", filters=ANY) == []
    # Price and stock change without the index: the filter reads them now.
    Product.objects.filter(pk=cheap.pk).update(price=500)
    assert ids("brass", SearchFilters(max_price=100)) == [added.pk]
    Product.objects.filter(pk=added.pk).update(availability=Product.Availability.OUT_OF_STOCK)
    assert ids("brass", SearchFilters(in_stock=True)) == [cheap.pk]


def test_a_changed_product_is_ranked_on_the_index_scale(settings):
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    in_text = ProductFactory(title="Serving set", description="with a walnut tray")
    publish_with_keywords(settings)
    in_title = ProductFactory(title="Walnut bowl")  # matched outside the index
    hits = selectors.keyword_hits(query="walnut", filters=ANY, limit=10)
    assert [pid for pid, _ in hits] == [in_title.pk, in_text.pk]
    assert hits[0][1] < hits[1][1] < 0  # lower = better, as FTS5's bm25()


def test_hits_switched_off_since_the_build_are_skipped_window_by_window(settings, monkeypatch):
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    monkeypatch.setattr(keyword_engine, "MIN_WINDOW", 2)
    off = [ProductFactory(title="Red lamp red").pk for _ in range(5)]
    on = ProductFactory(title="Red lamp", description="x " * 50).pk  # the weakest match
    publish_with_keywords(settings)
    # Switched off without touching updated_at: the index still holds them, and under a filter
    # the index cannot answer alone (in stock) the live check drops them, window by window.
    # (Without one an unchanged hit is trusted: every catalogue write of is_active moves
    # updated_at, tests/search/test_keyword_count_reuse.py.)
    Product.objects.filter(pk__in=off).update(is_active=False)
    assert ids("red lamp", SearchFilters(in_stock=True)) == [on]
    Product.objects.filter(pk__in=off).update(updated_at=timezone.now())
    assert ids("red lamp") == [on]


def test_too_many_changes_and_the_database_setting_fall_back_to_the_database(settings, monkeypatch):  # fmt: skip
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    ProductFactory(title="Oak shelf")
    publish_with_keywords(settings)
    ProductFactory(title="Oak stool")
    ProductFactory(title="Oak bench")
    assert len(ids("oak")) == 3
    monkeypatch.setattr(keyword_delta, "MAX_DELTA", 1)
    assert keyword_engine.hits(terms=['"oak"'], filters=ANY, limit=5, any_word=False, exclude=()) is None  # fmt: skip
    assert len(ids("oak")) == 3  # the database answered
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "database"
    assert keyword_engine.current() is None


def test_a_broad_word_is_scored_over_every_match_on_the_engine(settings, monkeypatch):
    """Intended difference: the database scores a broad word's newest KEYWORD_SCORED_MAX matches
    only; the engine scores them all (WAND keeps it cheap), so an old best match is found."""
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    monkeypatch.setattr(fts, "KEYWORD_SCORED_MAX", 2)
    best = ProductFactory(title="Lamp").pk
    for n in range(4):
        ProductFactory(title=f"Reading corner set {n}", description="comes with a lamp")
    publish_with_keywords(settings)
    assert ids("lamp")[0] == best
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "database"
    assert best not in ids("lamp")


def test_a_version_without_a_keyword_index_uses_the_database(settings):
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    settings.MEEPO_CLIP_MODEL = MODEL
    vectors = np.eye(4, 8, dtype=np.float32)
    path, _, _ = publish_arrays(np.arange(1, 5, dtype=np.int64), vectors, model=MODEL)
    assert not (path / KEYWORD_DIR).exists()
    assert keyword_engine.current() is None
    mug = ProductFactory(title="Blue mug")
    assert ids("mug") == [mug.pk]


def test_a_prefix_with_many_completions_matches_them_all(engine):
    many = {ProductFactory(title=f"Lamp{a}{b} stand").pk for a in "abcde" for b in "fghij"}
    engine()
    assert len(many) > keyword_delta.PREFIX_SCORED_MAX
    hits = selectors.keyword_hits(query="stand lamp", filters=ANY, limit=50)
    assert {pid for pid, _ in hits} == many
    assert selectors.keyword_count(query="stand lamp", filters=ANY) == len(many)


@pytest.mark.parametrize("query", ["oak table ", "oak tab"])
def test_a_changed_product_scores_as_it_would_in_the_index(settings, query):
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    products = [ProductFactory(title=f"Oak table {c}", description="") for c in "xyz"]
    ProductFactory(title="Oak chair seat", description="")
    publish_with_keywords(settings)
    indexed = dict(selectors.keyword_hits(query=query, filters=ANY, limit=10))
    products[1].save()  # now in the delta, matched and scored outside the index
    changed = dict(selectors.keyword_hits(query=query, filters=ANY, limit=10))
    assert changed.keys() == indexed.keys() == {p.pk for p in products}
    assert changed[products[1].pk] == pytest.approx(indexed[products[1].pk], rel=1e-3)


def test_a_new_version_is_picked_up_without_restart(settings):
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    ProductFactory(title="Velvet chair")
    first = publish_with_keywords(settings)
    assert keyword_engine.current().path == first / "keyword"
    second = publish_with_keywords(settings)
    assert keyword_engine.current().path == second / "keyword"
    assert len(ids("velvet")) == 1


@pytest.mark.parametrize(
    ("clauses", "prefix", "exclude", "any_word", "expected"),
    [
        (("oak", "tabl"), None, (), False, True),
        (("oak", "chair"), None, (), False, False),
        (("oak",), "tab", (), False, True),
        (("oak",), "cha", (), False, False),
        (("oak",), None, ("tabl",), False, False),
        (("chair", "pine"), None, (), True, False),
        (("chair", "oak"), None, (), True, True),
        (("chair",), "tab", (), True, True),
        ((), None, (), False, False),
        ((), None, (), True, False),
    ],
)
def test_a_changed_product_matches_as_the_index_would(clauses, prefix, exclude, any_word, expected):  # fmt: skip
    doc = keyword_delta._document((1, "Oak table", "", "", "", "", 1, True))
    words = keyword_delta.Words(clauses, prefix, exclude)
    assert keyword_delta.matches(doc, words, any_word=any_word) is expected


def test_changed_products_are_read_once_whatever_query_reads_the_delta(settings, monkeypatch):
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    ProductFactory(title="Oak shelf")
    publish_with_keywords(settings)
    ProductFactory(title="Oak stool")
    reads = []
    real = keyword_delta.iter_products
    monkeypatch.setattr(keyword_delta, "iter_products", lambda **kw: reads.append(kw) or real(**kw))  # fmt: skip
    for _ in range(2):  # the live check's UNION and count's own query read the same rows
        assert len(ids("oak")) == 2
        assert selectors.keyword_count(query="oak", filters=ANY) == 2
    assert len(reads) == 1


def test_an_attribute_filter_applies_live(engine):
    from catalog.models import ProductAttributes

    navy = ProductFactory(title="Linen shirt")
    red = ProductFactory(title="Linen shirt two")
    for product, colour in ((navy, "navy"), (red, "red")):
        ProductAttributes.objects.create(product=product, colour=colour, model_name="m", key="k")
    engine()
    navy_only = SearchFilters(attributes=(("colour", ("navy",)),))
    assert ids("linen shirt", navy_only) == [navy.pk]
    assert selectors.keyword_count(query="linen shirt", filters=navy_only) == 1
    # Re-labelled after the build (attributes never touch the product's updated_at).
    ProductAttributes.objects.filter(product=red).update(colour="navy")
    assert set(ids("linen shirt", navy_only)) == {navy.pk, red.pk}


@pytest.mark.parametrize("damage", ["truncated segment", "garbled tantivy meta"])
def test_a_damaged_keyword_index_falls_back_to_the_database(settings, caplog, damage):
    """A version whose keyword files are damaged (a disk fault, a half-copied directory) must
    not break search: it is opened once, logged, and the database answers every query."""
    from search import keyword_index

    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    oak = ProductFactory(title="Oak shelf")
    path = publish_with_keywords(settings) / KEYWORD_DIR
    assert keyword_engine.current() is not None  # whole, it answers
    if damage == "truncated segment":
        # A new file over the old name, never a write into it: this process still maps the
        # old one (tantivy mmaps segments), and cutting a mapped file under it is a SIGBUS.
        victim = next(path.glob("*.idx"))
        victim.with_suffix(".cut").write_bytes(b"xx")
        os.replace(victim.with_suffix(".cut"), victim)
    else:
        (path / "meta.json").write_text("{bad", "utf-8")
    keyword_index.forget_loaded()
    assert keyword_engine.current() is None
    assert keyword_engine.hits(terms=['"oak"'], filters=ANY, limit=5, any_word=False, exclude=()) is None  # fmt: skip
    assert ids("oak") == [oak.pk]  # the database answered
    assert "could not open the keyword index" in caplog.text
