"""Keyword search (FTS5/BM25), filter id sets, facets and hydration."""

import pytest

from catalog.models import Product
from search import fts, selectors
from search.keyword.sqlite import match
from search.selectors import SearchFilters
from tests.factories import ProductFactory, ProductImageFactory, StoreFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("red chair", '"red" AND "chair"*'),
        ("red chair ", '"red" AND "chair"'),
        (
            'title:x OR "y" NEAR(z) ^ab',
            '"title" AND "x" AND "y" AND "NEAR" AND "z" AND "ab"',
        ),
        ("🙂 !!", ""),
        ("وسادة", '"وسادة"*'),
        ("pillow for the sofa", '"pillow" AND "sofa"*'),
        ("Pillow FOR The ", '"Pillow"'),
        ("the the", '"the" AND "the"*'),
        ("red fo", '"red" AND "fo"'),  # two letters are not yet a prefix worth expanding
    ],
)
def test_fts_expression_quotes_every_word(query, expected):
    assert match(fts.fts_match_terms(query)) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("mug -ceramic", ("mug", ("ceramic",))),
        ("Blue mug -Ceramic -glass -ceramic", ("Blue mug", ("ceramic", "glass"))),
        ("red t-shirt", ("red t-shirt", ())),  # a hyphen inside a word is not a minus
        ("mug - ceramic", ("mug - ceramic", ())),
        ("-ceramic", ("-ceramic", ())),  # nothing left to search for: searched as typed
    ],
)
def test_minus_words_are_split_from_the_query(query, expected):
    assert selectors.split_negatives(query) == expected


def test_keyword_hits_leave_out_products_with_an_excluded_word():
    ProductFactory(title="Ceramic mug")
    enamel = ProductFactory(title="Enamel mug")
    ProductFactory(title="Mug", description="Hand-thrown ceramics")  # stemmed like the query
    hits = selectors.keyword_hits(query="mug", filters=SearchFilters(), limit=10, exclude=("ceramic",))  # fmt: skip
    assert [pid for pid, _ in hits] == [enamel.pk]


def test_keyword_hits_rank_title_above_description():
    in_title = ProductFactory(title="Walnut bowl")
    in_text = ProductFactory(title="Serving set", description="Comes with a walnut tray")
    hits = selectors.keyword_hits(query="walnut", filters=SearchFilters(), limit=10)
    assert [pid for pid, _ in hits] == [in_title.pk, in_text.pk]


def test_a_broad_word_is_scored_over_its_newest_matches_only(monkeypatch):
    monkeypatch.setattr(fts, "KEYWORD_SCORED_MAX", 3)
    shop = StoreFactory(slug="shop")
    lamps = [ProductFactory(store=shop, title=f"Lamp {n}").pk for n in range(6)]
    desk_lamp = ProductFactory(title="Desk lamp", store=StoreFactory(slug="other")).pk
    broad = selectors.keyword_hits(query="lamp", filters=SearchFilters(), limit=10)
    assert {pid for pid, _ in broad} == {lamps[4], lamps[5], desk_lamp}
    # Under a filter every match that passes it is scored: the newest ones might not.
    filtered = selectors.keyword_hits(query="lamp", filters=SearchFilters(stores=("shop",)), limit=10)  # fmt: skip
    assert {pid for pid, _ in filtered} == set(lamps)
    # Fewer matches than the cap: all of them are scored, best first.
    assert [pid for pid, _ in selectors.keyword_hits(query="desk", filters=SearchFilters(), limit=10)] == [desk_lamp]  # fmt: skip


def test_keyword_hits_stem_and_fold_accents():
    crepe = ProductFactory(title="Crêpe pans")
    assert [p for p, _ in selectors.keyword_hits(query="crepe pan", filters=SearchFilters(), limit=5)] == [crepe.pk]  # fmt: skip


def test_keyword_hits_apply_every_filter_in_sql():
    shop = StoreFactory(slug="shop")
    keep = ProductFactory(
        store=shop, title="Oak table", brand="Woody", category="Dining", price=100
    )
    ProductFactory(store=shop, title="Oak table two", brand="Other", category="Dining", price=100)
    ProductFactory(store=shop, title="Oak table dear", brand="Woody", category="Dining", price=900)
    ProductFactory(store=shop, title="Oak table gone", brand="Woody", category="Dining", price=100, is_active=False)  # fmt: skip
    ProductFactory(store=shop, title="Oak table none", brand="Woody", category="Dining", price=50, availability=Product.Availability.OUT_OF_STOCK)  # fmt: skip
    ProductFactory(title="Oak table elsewhere", brand="Woody", category="Dining", price=100)
    filters = SearchFilters(
        stores=("shop",), brands=("Woody",), categories=("Dining",), max_price=200, in_stock=True
    )
    assert [p for p, _ in selectors.keyword_hits(query="oak", filters=filters, limit=10)] == [
        keep.pk
    ]


def test_allowed_image_ids_skip_shared_and_unfetched_images():
    shop = StoreFactory(slug="s")
    product = ProductFactory(store=shop)
    ok = ProductImageFactory(product=product)
    ProductImageFactory(product=product, is_shared=True)
    ProductImageFactory(product=product, asset=None)
    ProductImageFactory(product=ProductFactory())  # other store
    assert selectors.allowed_image_ids(filters=SearchFilters()) is None
    assert selectors.allowed_image_ids(filters=SearchFilters(stores=("s",))).tolist() == [ok.pk]


def test_facets_count_candidates_only():
    a, b = StoreFactory(slug="a", name="A"), StoreFactory(slug="b", name="B")
    p1 = ProductFactory(store=a, brand="X", category="C1")
    p2 = ProductFactory(store=a, brand="Y", category="C1")
    ProductFactory(store=b, brand="X", category="C2")
    facets = selectors.facet_counts(product_ids=[p1.pk, p2.pk], filters=SearchFilters())
    assert facets["store"] == [("a", "A", 2)]
    assert sorted(facets["brand"]) == [("X", "X", 1), ("Y", "Y", 1)]
    assert facets["category"] == [("C1", "C1", 2)]


def test_candidate_facets_count_like_sql_grouping_in_two_queries(django_assert_num_queries):
    stores = [StoreFactory(slug=f"s{i}", name=f"S{i}") for i in range(3)]
    ids = [
        ProductFactory(store=stores[i % 3], brand="XYZ"[i % 3] if i % 4 else "", category=f"C{i % 5}").pk
        for i in range(40)
    ]  # fmt: skip
    filters = SearchFilters(stores=("s0", "s1"))
    with django_assert_num_queries(2):
        counted = selectors.facet_counts(product_ids=ids, filters=filters)
    assert counted == selectors.facet_counts(product_ids=[], filters=filters)  # grouped in SQL
    assert {slug for slug, _, _ in counted["store"]} == {"s0", "s1"}
    assert all(value for value, _, _ in counted["brand"])  # blank brands are not a facet value


def test_hydrate_is_two_queries_for_any_count(django_assert_num_queries):
    ids = [ProductImageFactory().product_id for _ in range(30)]
    with django_assert_num_queries(2):
        products = selectors.hydrate_products(ids)
        assert all(p.store.name and p.ready_images[0].asset.sha256 for p in products.values())
