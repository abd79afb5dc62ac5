"""The keyword index's hits read several windows to a search (search.keyword.windows): the same
hits, in the same order, as a search per window (the engine's reading before, AHEAD = 1), with
fewer searches when a live-checked filter leaves the first window short."""

import pytest

from catalog.models import Product
from search import keyword_engine, selectors
from search.fts import fts_match_terms
from search.keyword.windows import HitWindows
from search.selectors import SearchFilters
from tests.factories import ProductFactory
from tests.search.test_keyword_engine import publish_with_keywords

IN_STOCK = SearchFilters(in_stock=True)
CHEAP = SearchFilters(max_price=20)


class ListSearcher:
    """A searcher over a fixed ranked list (tantivy's `search` contract: limit, offset, count)."""

    def __init__(self, hits: list) -> None:
        self.ranked, self.calls = hits, []

    def search(self, query, limit, count=True, offset=0):
        self.calls.append((limit, offset, count))
        return Result(self.ranked[offset : offset + limit], len(self.ranked) if count else None)


class Result:
    def __init__(self, hits, count) -> None:
        self.hits, self.count = hits, count


class Counting:
    """A keyword index's searcher, counting its searches."""

    def __init__(self, searcher) -> None:
        self.searcher, self.searches = searcher, 0

    def search(self, *args, **kwargs):
        self.searches += 1
        return self.searcher.search(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.searcher, name)


@pytest.mark.parametrize("size", [0, 1, 5, 17, 60, 200])
@pytest.mark.parametrize("ahead", [1, 3, 10, 100])
def test_windows_are_the_searches_they_replace(size, ahead):
    ranked = [(float(-i), i) for i in range(size)]
    windows = HitWindows(ListSearcher(ranked), None, count=True, ahead=ahead)
    offset, window = 0, 3
    while True:
        got = windows.read(offset, window)
        assert got == ranked[offset : offset + window]
        if len(got) < window:
            break
        offset, window = offset + window, window * 4
    assert windows.total == size


def test_one_search_serves_the_windows_it_holds_and_counts_once():
    searcher = ListSearcher([(1.0, i) for i in range(100)])
    windows = HitWindows(searcher, None, count=True, ahead=15)
    assert windows.read(0, 3)
    assert windows.read(3, 12)
    assert searcher.calls == [(15, 0, True)]
    windows.read(15, 48)
    assert searcher.calls == [(15, 0, True), (48, 15, False)]
    assert windows.read(63, 192) == searcher.ranked[63:]  # the held list was full: one more
    assert len(searcher.calls) == 3  # search, which finds the end
    assert windows.read(300, 10) == []
    assert len(searcher.calls) == 3


@pytest.mark.django_db
def test_engine_answers_as_with_a_search_per_window(settings, monkeypatch):
    # Ranked by title length (BM25: shorter first); only the lowest ranked are in stock or
    # cheap, so a short first window leaves the page short and the next windows are read.
    made = [
        ProductFactory(
            title="Oak table " + " ".join(["fine"] * i),
            price=10 if i >= 20 else 90,
            availability=(
                Product.Availability.IN_STOCK if i >= 24 else Product.Availability.OUT_OF_STOCK
            ),
        )
        for i in range(30)
    ]
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    publish_with_keywords(settings)
    made[25].title = "Oak table changed since the build"  # the delta, read with the first window
    made[25].save()
    index = keyword_engine.current()
    counting = Counting(index.searcher)
    monkeypatch.setattr(index, "searcher", counting)
    monkeypatch.setattr(keyword_engine, "MIN_WINDOW", 2)
    for query, filters in [("oak", IN_STOCK), ("oak tab", CHEAP), ("oak", SearchFilters())]:
        answers, searches = [], []
        for ahead in (1, keyword_engine.AHEAD):
            monkeypatch.setattr(keyword_engine, "AHEAD", ahead)
            counting.searches = 0
            answers.append(keyword_engine.hits(terms=fts_match_terms(query), filters=filters, limit=3, any_word=False, exclude=()))  # fmt: skip
            searches.append(counting.searches)
        assert answers[0] == answers[1]
        assert answers[0]
        assert searches[1] <= searches[0]
        if filters == IN_STOCK:
            assert searches[1] < searches[0]
            assert [pid for pid, _ in answers[1]] == [made[25].pk, made[24].pk, made[26].pk]
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "database"
    found = selectors.keyword_hits(query="oak", filters=IN_STOCK, limit=3)
    assert {pid for pid, _ in found} == {made[24].pk, made[25].pk, made[26].pk}


@pytest.mark.django_db
def test_a_checked_count_reads_ids_through_the_index(settings, monkeypatch):
    """search.keyword.checked_count (lean data path, nothing changed since the build): the
    structural matches' ids from the index, checked now; the database's count."""
    from datetime import timedelta

    import numpy as np
    from django.utils import timezone

    from bench.planted_index import publish_arrays
    from search import keyword_delta
    from search.keyword import checked_count
    from search.keyword_index import write_keyword_index
    from search.snapshot_write import write_snapshot
    from tests.factories import ProductImageFactory

    for i in range(6):
        stock = Product.Availability.IN_STOCK if i % 3 else Product.Availability.OUT_OF_STOCK
        ProductImageFactory(product=ProductFactory(title=f"Oak table {i}", availability=stock))
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    settings.MEEPO_CLIP_MODEL = "test-model"
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0
    Product.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    image_ids = np.array(sorted(ProductImageFactory._meta.model.objects.values_list("pk", flat=True)))  # fmt: skip
    vectors = np.eye(len(image_ids), 8, dtype=np.float32)
    path, _, _ = publish_arrays(image_ids.astype(np.int64), vectors, model="test-model")
    write_snapshot(path, image_ids.astype(np.int64))
    write_keyword_index(path)
    keyword_delta.forget_cache()
    answers = []
    real = checked_count.count_checked
    monkeypatch.setattr(checked_count, "count_checked", lambda *a: answers.append(real(*a)) or answers[-1])  # fmt: skip
    assert selectors.keyword_count(query="oak", filters=IN_STOCK) == 4
    assert answers == [4]  # the index answered, not the database
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "database"
    assert selectors.keyword_count(query="oak", filters=IN_STOCK) == 4
