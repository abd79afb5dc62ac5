"""Python values from a columnar snapshot's columns (search.snapshot), made a whole column
at a time: hits' owners, candidate rows' prices, facet counts; and the one primary-key check of
owners changed since the build. Values equal the database's (tests/search/test_snapshot*.py).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from django.db import connection

NO_PRICE = -(2**63)  # price_milli of a product without a price


def owner_map(ids: np.ndarray, products: np.ndarray, assets: np.ndarray) -> dict:
    """{image id: (product id, asset id or None)}, built from whole columns."""
    found = assets.tolist()
    if len(assets) and int(assets.min()) < 0:
        found = [None if a < 0 else a for a in found]
    return dict(zip(ids.tolist(), zip(products.tolist(), found, strict=True), strict=True))


def price(milli: int) -> Decimal | None:
    """A price_milli value as the ORM reads the price (3 decimal places: 12.500)."""
    return None if milli == NO_PRICE else Decimal(milli).scaleb(-3)


# {price_milli: its Decimal}: a catalogue's prices repeat (making one costs ~0.3 us, a page's
# candidates ~240); kept up to PRICE_MEMO (~6 MB), later ones made each time. Decimals are
# immutable, so one may be shared.
PRICE_MEMO = 32_768
_price_memo: dict[int, Decimal | None] = {NO_PRICE: None}


def prices(millis: list[int]) -> list[Decimal | None]:
    """`price` of each."""
    memo = _price_memo
    if len(memo) < PRICE_MEMO:
        for m in millis:
            if m not in memo:
                memo[m] = price(m)
    return [memo[m] if m in memo else price(m) for m in millis]


def value_counts(codes: np.ndarray) -> list[tuple[int, int]]:
    """(code, count) for each code present, -1 included."""
    if not len(codes):
        return []
    shifted = np.asarray(codes, dtype=np.int64) + 1
    counts = np.bincount(shifted)
    present = np.flatnonzero(counts)
    return list(zip((present - 1).tolist(), counts[present].tolist(), strict=True))


def fresh_product_ids(product_ids: list[int]) -> set[int]:
    """Those of `product_ids` active now: one primary-key query (the snapshot's flag is as of
    the build; a product deactivated since must not be shown)."""
    if not product_ids:
        return set()
    marks = ", ".join(["%s"] * len(product_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM catalog_product WHERE is_active AND id IN ({marks})", list(product_ids)
        )
        return {row[0] for row in cursor.fetchall()}
