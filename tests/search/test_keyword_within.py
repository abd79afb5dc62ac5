"""A filtered page ranks its facet-removed search anyway (for the disjunctive counts); when that
search's keyword list is shorter than its depth it holds every keyword match, so the filtered
keyword list is cut from it (its hits passing the filter now) instead of searched again
(`text_signals(within=...)`, issue 13). Both ways give the same lists and scores.
"""

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from catalog.models import Product, Store
from search import relevance, selectors, services, signals
from search.selectors import SearchFilters
from tests.factories import ProductFactory
from tests.search.test_snapshot_parity import BRANDS, CATEGORIES, WORDS, catalogue

pytestmark = pytest.mark.django_db
RAW = relevance.FloorParams(enabled=False)


@pytest.fixture(autouse=True)
def _tiny_model(tiny_clip, settings):
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0
    settings.MEEPO_RELEVANCE_FLOOR = False  # the tiny random CLIP's scores mean nothing


def pairs(rng):
    """(wider filters, narrower filters): facet-removed searches and their filtered pages, with
    price, stock and attribute filters on either side."""
    brand, category = rng.choice(BRANDS), rng.choice(CATEGORIES)
    return [
        (SearchFilters(), SearchFilters(brands=(brand,))),
        (SearchFilters(), SearchFilters(brands=(brand, rng.choice(BRANDS)))),
        (SearchFilters(in_stock=True), SearchFilters(brands=(brand,), in_stock=True)),
        (
            SearchFilters(categories=(category,)),
            SearchFilters(categories=(category,), stores=("s1",)),
        ),
        (
            SearchFilters(max_price=Decimal("50")),
            SearchFilters(brands=(brand,), max_price=Decimal("50")),
        ),
        (
            SearchFilters(),
            SearchFilters(min_price=Decimal("20"), attributes=(("colour", ("navy",)),)),
        ),
    ]


def queries(rng, count):
    for _ in range(count):
        query = " ".join(rng.sample(WORDS, rng.randrange(1, 3)))
        if rng.random() < 0.3:
            query += " -" + rng.choice(WORDS)
        yield query


def compare(query, wider, narrower, depth):
    wide = signals.text_signals(query, filters=wider, depth=depth, floor=RAW)
    services.clear_caches()
    searched = signals.text_signals(query, filters=narrower, depth=depth, floor=RAW)
    if wide.every_match is None:  # cut at its depth: not every match, nothing to cut from
        return None
    services.clear_caches()
    cut = signals.text_signals(
        query, filters=narrower, depth=depth, floor=RAW, within=wide.every_match
    )
    assert cut.keyword == searched.keyword, (query, wider, narrower, depth)
    assert cut.every_match == searched.every_match
    assert (cut.exact, cut.negatives, cut.status) == (searched.exact, searched.negatives, searched.status)  # fmt: skip
    return len(searched.keyword), len(searched.exact)


def changed_since_the_build():
    """A product re-priced, re-branded and re-titled since the build, one sold out, one gone,
    six scraped since: the keyword search matches them from the delta, the cut checks them live."""
    later = timezone.now() + timedelta(seconds=1)
    first, second, third = Product.objects.order_by("pk")[:3]
    Product.objects.filter(pk=first.pk).update(
        title="Navy oak lamp", brand="Birch", price=Decimal("12.00"), updated_at=later
    )
    Product.objects.filter(pk=second.pk).update(availability="out_of_stock", updated_at=later)
    Product.objects.filter(pk=third.pk).update(is_active=False, updated_at=later)
    for n in range(6):  # more exact matches than a search lists: that list is not cut from
        ProductFactory(
            store=Store.objects.get(slug=f"s{n % 3}"),
            title="Red oak mug",
            brand=BRANDS[n % 3],
            price=Decimal(9 + 10 * n),
        )


@pytest.mark.parametrize("engine", ["auto", "database"])
def test_the_cut_keyword_list_is_the_searched_one(settings, engine):
    catalogue(settings)
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = engine
    rng = random.Random(3)
    titles = [p.title for p in Product.objects.order_by("pk")[3:11]] + [
        "navy OAK lamp",
        "Red oak mug",
    ]
    compared = nonempty = exact = 0
    for step, query in enumerate([*queries(rng, 40), *titles]):
        if step == 20:
            changed_since_the_build()
        for wider, narrower in pairs(rng):
            for depth in (12, 120):
                services.clear_caches()
                found = compare(query, wider, narrower, depth)
                compared += found is not None
                nonempty += bool(found and found[0])
                exact += bool(found and found[1])
    assert compared >= 200
    assert nonempty >= 100
    assert exact >= 10  # whole titles: exact matches (looked up, not cut: that saved ~0.05 ms)


def test_a_cold_filtered_page_searches_its_words_once(settings, monkeypatch):
    catalogue(settings)
    calls = []
    real = selectors.keyword_hits
    monkeypatch.setattr(selectors, "keyword_hits", lambda **k: calls.append(k) or real(**k))
    filters = SearchFilters(brands=("Birch",), in_stock=True)
    page = services.search_products(query="oak", filters=filters, spell=False)
    assert [c["filters"] for c in calls] == [SearchFilters(in_stock=True)]
    monkeypatch.setattr(selectors, "keyword_hits", real)
    services.clear_caches()
    found, _ = signals.ranked("oak", filters, services.CANDIDATE_DEPTH, {})  # searched alone
    assert [h.product.pk for h in page.hits] == [
        h.product.pk
        for h in services.build_page(
            "text", found.candidates, offset=0, limit=24, filters=filters, timings={}
        ).hits
    ]
    # Refining a page seen a moment ago: its list is cached and may predate a change, so the
    # filtered page searches its own words.
    services.clear_caches()
    services.search_products(query="oak", spell=False)
    calls.clear()
    monkeypatch.setattr(selectors, "keyword_hits", lambda **k: calls.append(k) or real(**k))
    services.search_products(query="oak", filters=SearchFilters(brands=("Birch",)), spell=False)
    assert [c["filters"] for c in calls] == [SearchFilters(brands=("Birch",))]
