"""Price and stock filters against the live catalogue, answered from the columnar snapshot.

Price, stock and the active flag change between index builds; structural columns (store, brand,
category, attributes) only with the index. Two exact ways to filter the index's rows on them
without a query over the whole catalogue:

- `live_rows`: the rows passing the filter as of the build (snapshot columns), corrected for
  the products changed since (`updated_at` after the snapshot's read, on its index, one query
  that also says which of them pass now). The same set the database would list, so the same
  results; None past MAX_CHANGED changed products (a rebuild is due).
- `passing_product_ids`: which of a few products pass now, by primary key: the check for
  hits ranked from a structural superset (search.signals), which needs no change tracking.

Guarantees: every change that moves `updated_at` (catalog.services writes it with each
changed field, and with each deactivation) is seen, and so is every deletion (a product deleted
leaves no row: its tombstone, catalog.ProductDeletion, written by a database trigger, is read in
the same query, UNION ALL on the `deleted_at` index, and a deleted product re-read by primary key
is found gone); CHANGE_MARGIN covers a writer's transaction that stamped `updated_at` before the
snapshot read and committed after it. `prune_deletions` (run by each index build) drops the
tombstones older than every kept index version.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from django.db import connection
from numpy.typing import NDArray

# Past this many products changed since the build, the database lists the allowed ids.
MAX_CHANGED = 2_000
# Products stamped this long before the snapshot read count as changed (their write may have
# committed after the read).
CHANGE_MARGIN = timedelta(seconds=60)
# Product ids checked per query: well under SQLite's bound-parameter limit.
CHECK_CHUNK = 500
# Tombstones are kept this long before the oldest kept index version started (a web node still
# serving an older version while it syncs, a version's read well after its stamp).
DELETION_KEEP_MARGIN = timedelta(days=1)


def changed_since_sql(product_columns: str = "", deleted_columns: str = "") -> str:
    """The one "changed since" query: ids of products written (`updated_at > %s`) or deleted
    (their tombstone's `deleted_at > %s`) since a moment, `LIMIT %s`, on the updated_at and
    (deleted_at, product_id) indexes. `product_columns` / `deleted_columns` are selected beside
    each id (over `catalog_product p` / the tombstones); params: those of `product_columns`,
    then since, since, limit. Used by the snapshot's corrections here and by
    search.keyword_delta for the keyword index."""
    return (
        f"SELECT p.id{product_columns} FROM catalog_product p WHERE p.updated_at > %s UNION ALL "
        f"SELECT product_id{deleted_columns} FROM catalog_productdeletion WHERE deleted_at > %s "
        "LIMIT %s"
    )


def read_stamp(snap):
    """`since(snap)` as the database takes it; worked out once per snapshot, data path and
    database time zone (it is read on every request)."""
    from django.conf import settings

    meta = snap.meta
    key = (meta.get("read_at"), meta.get("written_at"), meta.get("keyword_written_at"), fast(),
           CHANGE_MARGIN, connection.vendor, settings.USE_TZ, connection.timezone_name)  # fmt: skip
    stamp = _stamps.get(key)
    if stamp is None:
        if len(_stamps) >= 16:  # old versions' stamps
            _stamps.clear()
        stamp = _stamps[key] = connection.ops.adapt_datetimefield_value(since(snap))
    return stamp


_stamps: dict[tuple, object] = {}


def since(snap) -> datetime:
    """The moment `snap` read the catalogue, less CHANGE_MARGIN; with the lean data path, the
    keyword index of its version's `written_at` when that is earlier (a superset of changes,
    so as exact): changes since cover the keyword index's too (keyword_delta.known_empty)."""
    read = datetime.fromisoformat(snap.meta.get("read_at") or snap.meta["written_at"])
    words = snap.meta.get("keyword_written_at")
    if words and fast():
        return min(read - CHANGE_MARGIN, datetime.fromisoformat(words))
    return read - CHANGE_MARGIN


def changed_products(snap, filters) -> tuple[list[int], list[int]] | None:
    """(ids of products changed or deleted since `snap` read the catalogue, those of them
    passing `filters` now), in one query on the updated_at and deleted_at indexes; None past
    MAX_CHANGED. Within a `request_scope` whose look at the changes (`changed_ids`, the same
    stamp) found none, none without a query; else that look's changed products checked now."""
    if _scope.get() is not None:
        changed = changed_ids(snap)
        if changed is None:
            return None
        ids = changed.tolist()
        return ids, sorted(passing_product_ids(ids, filters)) if ids else []
    where, params = filters.sql("p")
    sql = changed_since_sql(f", CASE WHEN {where} THEN 1 ELSE 0 END", ", 0")
    stamp = read_stamp(snap)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, stamp, stamp, MAX_CHANGED + 1])
        rows = cursor.fetchall()
    if len(rows) > MAX_CHANGED:
        return None
    return [pid for pid, _ in rows], [pid for pid, ok in rows if ok]


def fast() -> bool:
    """Whether the lean data path is on (MEEPO_SEARCH_DATAPATH, default "fast"): one "changed
    since" read per request (`request_scope`), candidate rows and price or stock facets from the
    snapshot's columns, a filtered page's narrower lists cut from its wider search's. "plain":
    the path before it, a query each (kept to compare results and cost: bench.search
    --equality MEEPO_SEARCH_DATAPATH=plain, bench.search_cpu --other MEEPO_SEARCH_DATAPATH=plain).
    Read from the environment at each call, so a benchmark can switch it between requests."""
    return os.environ.get("MEEPO_SEARCH_DATAPATH", "fast") != "plain"


# One request's memo (`request_scope`): {key: value}; None outside a scope.
_scope: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "live_rows_scope", default=None
)


@contextlib.contextmanager
def request_scope():
    """Within it, `changed_ids` reads the catalogue's changes once per snapshot (and
    `scoped` memoises other per-request reads): a page's searches (the filtered one and the
    facet-removed one), owners, candidate rows and facets then see one moment's changes, as if
    read at once, instead of a query each. Nested scopes share the outer one."""
    if _scope.get() is not None or not fast():
        yield
        return
    token = _scope.set({})
    try:
        yield
    finally:
        _scope.reset(token)


def scope_memo() -> dict | None:
    """The current request scope's memo ({key: value}, shared by `scoped`), None outside one:
    for a read that learns something a later read of the same request can skip (hydration's
    "has variants" flags, search.hydration)."""
    return _scope.get()


def scoped(key, compute):
    """`compute()`, once per request scope for `key` (every call outside one)."""
    memo = _scope.get()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def changed_ids(snap) -> NDArray[np.int64] | None:
    """Sorted ids of the products changed or deleted since `snap` read the catalogue
    (`updated_at` or the tombstone's `deleted_at` after the read, less CHANGE_MARGIN), from the
    updated_at and deleted_at indexes alone (no table row is read); None past MAX_CHANGED. What
    `Snapshot.fresh_owners` corrects the build-time active flag with (a deleted owner re-read
    by primary key is not found: not shown). Read once per `request_scope`."""
    return scoped(("changed", id(snap), snap.meta.get("read_at")), lambda: _changed_ids(snap))


def _changed_ids(snap) -> NDArray[np.int64] | None:
    stamp = read_stamp(snap)
    with connection.cursor() as cursor:
        cursor.execute(changed_since_sql(), [stamp, stamp, MAX_CHANGED + 1])
        rows = cursor.fetchall()
    if len(rows) > MAX_CHANGED:
        return None
    if not rows:
        return _NONE_CHANGED
    return np.unique(np.fromiter((row[0] for row in rows), np.int64, len(rows)))


_NONE_CHANGED = np.zeros(0, np.int64)
_NONE_CHANGED.flags.writeable = False  # shared by every request that sees no change


def live_rows(snap, filters, as_of_build: NDArray[np.int64], changed, passing):
    """Sorted rows passing `filters` now: `as_of_build` (the rows passing at the build) less the
    rows of the `changed` products, plus those of the changed products that pass now."""
    if not len(changed):
        return as_of_build
    mask = np.zeros(len(snap), bool)
    mask[as_of_build] = True
    mask[snap.rows_of_products(changed)] = False
    mask[snap.rows_of_products(passing)] = True
    return np.flatnonzero(mask).astype(np.int64)


def passing_now(snap, product_ids: list[int], filters) -> set[int]:
    """`passing_product_ids`, with the lean data path and a snapshot: the products it holds
    that did not change since its build (`changed_ids`) are checked against its columns, which
    for them are the catalogue's now (price, stock and active flag included); the rest by
    primary key. Attribute filters go to the database whole (the attributes table's writes do
    not move a product's `updated_at`)."""
    changed = None
    if snap is not None and fast() and not any(values for _, values in filters.attributes):
        changed = changed_ids(snap)
    if changed is None:
        return passing_product_ids(product_ids, filters)
    ids = np.asarray(product_ids, dtype=np.int64)
    rows = snap.product_rows(ids)
    held = rows >= 0
    if len(changed):
        held &= ~np.isin(ids, changed)
    found = set(ids[held][snap.mask(filters, rows[held])].tolist())
    rest = ids[~held].tolist()
    return found | passing_product_ids(rest, filters) if rest else found


def passing_product_ids(product_ids: list[int], filters) -> set[int]:
    """Those of `product_ids` that pass `filters` now (price, stock, active flag as they are
    now), in primary-key queries over the products alone. (An index row's image had an asset
    and was not shared at the build, as for every snapshot answer.)"""
    where, params = filters.sql("p")
    out: set[int] = set()
    for start in range(0, len(product_ids), CHECK_CHUNK):
        part = list(product_ids[start : start + CHECK_CHUNK])
        marks = ", ".join(["%s"] * len(part))
        sql = f"SELECT p.id FROM catalog_product p WHERE p.id IN ({marks}) AND {where}"
        with connection.cursor() as cursor:
            cursor.execute(sql, [*part, *params])
            out.update(row[0] for row in cursor.fetchall())
    return out


def prune_deletions(root: Path | None = None) -> int:
    """Delete the tombstones no kept index version needs: those written more than
    DELETION_KEEP_MARGIN before the oldest version under `root` (default: the index root)
    started (its stamp, taken before its catalogue read). Nothing when no version is found.
    Returns how many were deleted. Run by each index build, after it prunes old versions."""
    from catalog.models import ProductDeletion

    if root is None:
        from search.index import index_root

        root = index_root()
    started = []
    for path in root.iterdir() if root.is_dir() else ():
        try:
            stamp = datetime.strptime(path.name, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
        except ValueError:
            continue  # `current`, a build in progress
        if path.is_dir() and not path.is_symlink():
            started.append(stamp)
    if not started:
        return 0
    return ProductDeletion.prune(before=min(started) - DELETION_KEEP_MARGIN)
