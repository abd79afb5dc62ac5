"""An index query's hits read window by window (search.keyword_engine._live_top), several
windows to a search.

tantivy scores every match of a query whatever the number of hits asked: at 1 M products a
query costs ~2.2 ms CPU for its top 120 or its top 600 alike (bench numbers in
docs/benchmarks.md, issue 13). Under a filter checked live (price, stock, attributes) the first
window is often left short and the next one was a second, whole search; reading it with the
first spares that search. Hits come in one order (score, then document address), so a window
cut from a longer list is the window a search at its offset returns: the same hits, in the
same order, as reading each window by its own search.
"""

from __future__ import annotations

from typing import Any


class HitWindows:
    """`read(offset, window)`: the hits of `query` at [offset, offset + window), served from
    one search of at least `ahead` hits while they last; `total`: the first search's match
    count when `count` (else None)."""

    def __init__(self, searcher: Any, query: Any, *, count: bool, ahead: int) -> None:
        self.searcher, self.query, self.count, self.ahead = searcher, query, count, ahead
        self.start, self.hits, self.complete = 0, [], False
        self.total: int | None = None
        self.searches = 0

    def read(self, offset: int, window: int) -> list:
        """The hits at [offset, offset + window): fewer only past the query's last match."""
        end = offset + window
        held_to = self.start + len(self.hits)
        if offset < self.start or (end > held_to and not self.complete):
            self._search(offset, max(window, self.ahead))
        return self.hits[max(0, offset - self.start) : max(0, end - self.start)]

    def _search(self, offset: int, size: int) -> None:
        first = self.searches == 0
        result = self.searcher.search(self.query, size, count=self.count and first, offset=offset)
        if first:
            self.total = result.count
        self.searches += 1
        self.start, self.hits = offset, result.hits
        # Fewer than asked: the query has no more matches past these.
        self.complete = len(result.hits) < size


def product_ids(searcher: Any, hits: list) -> list[int]:
    """The product ids of `hits`, from the index's `id` fast field (no stored document read)."""
    if not hits:
        return []
    return [int(v) for v in searcher.fast_field_values("id", [addr for _, addr in hits])]


def count_matches(searcher: Any, query: Any) -> int:
    """How many documents match `query`, unscored: sorted by the `id` fast field, tantivy
    computes no score (~25% less CPU than the same count beside a top-k by score)."""
    return searcher.search(query, 1, count=True, order_by_field="id").count
