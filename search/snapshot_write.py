"""Writing the columnar snapshot (search.snapshot, whose docstring lists its files) into an
index version being built: one chunked read of the catalogue, each column saved and fsynced.
Called by pipeline.indexing.build before the version is published.

`write_row_columns` adds the candidate-row columns (GTIN, currency, exact price) and the
identifier hashes (`write_identifiers`, search.exact_guard) to a snapshot written before they
existed (bench.search_cpu does it for its catalogues): they are read later
than the others, which is as exact, since a product changed since the snapshot's read is
re-read from the database whatever its columns say (search.live_rows.changed_ids). It adds the
filter columns' value orders (`write_value_orders`) too, made from the columns themselves."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from django.db import connection
from numpy.typing import NDArray

from catalog.models import Product
from search.attributes import ATTRIBUTES
from search.durable import fsync_path
from search.exact_guard import IDENTIFIERS
from search.id_query import IdQuery
from search.snapshot import CODED, FORMAT, NO_PRICE, SNAPSHOT_DIR
from search.value_rows import ORDERS_DIR, ORDERS_KEY, ValueRows

# Rows read per query while writing: bounded memory, and SQLite's limit on bound parameters.
CHUNK = 20_000
# The columns Snapshot.chosen_values filters on: each gets its rows by value written.
FILTERED = ("store", *CODED)


def write_snapshot(version_dir: Path, image_ids: NDArray[np.int64]) -> dict[str, Any]:
    """Write `<version_dir>/snapshot/` for `image_ids` (sorted, as in ids.npy). Returns meta.

    Images no longer in the catalogue get inactive rows. Files are fsynced by the publish step
    with the rest of the version (it fsyncs every file of the version directory tree it knows);
    here each file is fsynced as written, so a directory that exists is complete.
    """
    ids = np.ascontiguousarray(image_ids, dtype=np.int64)
    read_at = datetime.now(UTC)  # before the read: a change after it is in the delta
    cols, tables = _read_columns(ids)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, slug, name FROM catalog_store")
        stores = {str(pk): [slug, name] for pk, slug, name in cursor.fetchall()}
    meta = {
        "format": FORMAT,
        "rows": len(ids),
        "written_at": datetime.now(UTC).isoformat(),
        "read_at": read_at.isoformat(),
        "stores": stores,
        "codes": {name: list(table) for name, table in tables.items()},
    }
    out = Path(version_dir) / SNAPSHOT_DIR
    out.mkdir()
    cols["rows"] = ids
    cols["by_product"] = np.argsort(cols["product"], kind="stable").astype(np.int64)
    cols["product_sorted"] = cols["product"][cols["by_product"]]
    for name, values in cols.items():
        _save(out / f"{name}.npy", values)
    meta["currencies"] = _write_row_columns(out, cols["product"])
    write_identifiers(out)
    meta[ORDERS_KEY] = write_value_orders(out, cols)
    (out / "meta.json").write_text(json.dumps(meta), "utf-8")
    fsync_path(out / "meta.json")
    fsync_path(out)
    return meta


def write_row_columns(version_dir: Path) -> bool:
    """Add gtin.npy, currency.npy and price_milli.npy (and meta's currency table), identifiers.npy
    and the value orders to a snapshot that lacks them; each file written under a temporary
    name and renamed, meta.json last, so a reader sees the old snapshot or the whole new one.
    False when there was nothing to add."""
    out = Path(version_dir) / SNAPSHOT_DIR
    meta = json.loads((out / "meta.json").read_text("utf-8"))
    added = not (out / f"{IDENTIFIERS}.npy").is_file()
    if added:
        write_identifiers(out, atomic=True)
    rewrite = False
    if ORDERS_KEY not in meta:
        columns = {name: np.load(out / f"{name}.npy", mmap_mode="r") for name in FILTERED}
        meta[ORDERS_KEY], rewrite = write_value_orders(out, columns, atomic=True), True
    if "currencies" not in meta or not (out / "price_milli.npy").is_file():
        meta["currencies"] = _write_row_columns(out, np.load(out / "product.npy"), atomic=True)
        rewrite = True
    if not rewrite:
        return added
    tmp = out / "meta.json.tmp"
    tmp.write_text(json.dumps(meta), "utf-8")
    fsync_path(tmp)
    os.replace(tmp, out / "meta.json")
    fsync_path(out)
    return True


def write_identifiers(out: Path, atomic: bool = False) -> int:
    """Write identifiers.npy (search.exact_guard): the sorted unique hashes of every platform
    id, SKU, MPN and GTIN of the catalogue's products and their variants, read in CHUNK-row
    pages by id (after the snapshot's read stamp: a change since is seen by changed_ids).
    Returns how many."""
    from search.exact_guard import identifier_hashes

    parts = []
    for table, columns in (("catalog_product", "external_id, sku, mpn, gtin"), ("catalog_productvariant", "sku, gtin")):  # fmt: skip
        last = -1
        while True:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT id, {columns} FROM {table} WHERE id > %s ORDER BY id LIMIT %s", [last, CHUNK])  # fmt: skip
                rows = cursor.fetchall()
            if not rows:
                break
            last = rows[-1][0]
            parts.append(identifier_hashes([v for row in rows for v in row[1:] if v]))
    hashes = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
    path = out / f"{IDENTIFIERS}.npy"
    if atomic:  # beside a snapshot in use: readers see no file or the whole one
        tmp = out / f"{IDENTIFIERS}.npy.{os.getpid()}.tmp"
        _save(tmp, hashes)
        os.replace(tmp, path)
    else:
        _save(path, hashes)
    return len(hashes)


def write_value_orders(
    out: Path, cols: dict[str, np.ndarray], atomic: bool = False
) -> dict[str, dict[str, int | str]]:
    """Write each FILTERED column's search.value_rows arrays into `out/ORDERS_DIR/` (the order,
    and the start table or the sorted values); returns what meta.json lists under ORDERS_KEY
    (the caller writes it after them: a listed column has its files). `atomic`: beside a
    snapshot in use, each file under a temporary name renamed into place."""
    folder = out / ORDERS_DIR
    folder.mkdir(exist_ok=True)
    listed = {}
    for name in FILTERED:
        arrays, listed[name] = ValueRows(np.asarray(cols[name])).arrays()
        for part, values in arrays.items():
            path = folder / f"{name}.{part}.npy"
            if atomic:
                tmp = folder / f"{name}.{part}.npy.{os.getpid()}.tmp"
                _save(tmp, values)
                os.replace(tmp, path)
            else:
                _save(path, values)
    fsync_path(folder)
    return listed


# The candidate rows' own query (selectors.candidate_rows), so prices are the Decimals the ORM
# converts them to, exactly.
_product_rows = IdQuery(
    lambda ids: Product.objects.filter(pk__in=ids).values_list("pk", "gtin", "currency", "price")
)


def _write_row_columns(out: Path, products: NDArray[np.int64], atomic: bool = False) -> list[str]:
    """Write the candidate-row columns of each row's product; returns the currency table.
    Memory stays bounded: per-product arrays (~22 bytes a product), filled chunk by chunk, then
    gathered per row."""
    products = np.asarray(products, dtype=np.int64)
    unique, inverse = np.unique(products, return_inverse=True)
    found = np.zeros(len(unique), bool)
    gtin = np.zeros(len(unique), dtype="S14")
    currency = np.full(len(unique), -1, np.int16)
    milli = np.full(len(unique), NO_PRICE, np.int64)
    table: dict[str, int] = {}
    known = np.flatnonzero(unique >= 0)
    for start in range(0, len(known), CHUNK):
        rows = _product_rows.rows(unique[known[start : start + CHUNK]].tolist())
        if not rows:
            continue
        at = np.searchsorted(unique, np.fromiter((r[0] for r in rows), np.int64, len(rows)))
        codes = [(r[1] or "").encode("utf-8") for r in rows]
        width = max(len(c) for c in codes)
        if width > gtin.dtype.itemsize:  # longer than a GTIN: widen (never truncate)
            gtin = gtin.astype(f"S{width}")
        found[at] = True
        gtin[at] = codes
        currency[at] = [table.setdefault(r[2] or "", len(table)) for r in rows]
        milli[at] = [NO_PRICE if r[3] is None else int(r[3].scaleb(3)) for r in rows]
    cols = {"gtin": gtin[inverse], "currency": currency[inverse], "price_milli": milli[inverse]}
    missing = ~found[inverse]  # rows of products gone since: as if never read
    cols["gtin"][missing], cols["currency"][missing] = b"", -1
    cols["price_milli"][missing] = NO_PRICE
    for name, values in cols.items():
        if atomic:
            _save(out / f"{name}.npy.tmp", values)
            os.replace(out / f"{name}.npy.tmp", out / f"{name}.npy")
        else:
            _save(out / f"{name}.npy", values)
    return list(table)


def _read_columns(ids: NDArray[np.int64]) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """The columns of each image id (CHUNK ids per query) and the code table of each coded
    column ({value: code}, codes in order of first appearance)."""
    n = len(ids)
    cols: dict[str, np.ndarray] = {
        "product": np.full(n, -1, np.int64),
        "asset": np.full(n, -1, np.int64),
        "store": np.full(n, -1, np.int32),
        "price": np.full(n, np.nan, np.float64),
        "in_stock": np.zeros(n, bool),
        "active": np.zeros(n, bool),
        **{name: np.full(n, -1, np.int32) for name in CODED},
    }
    tables: dict[str, dict[str, int]] = {name: {} for name in CODED}
    attr_sql = ", ".join(f"a.{name}" for name in ATTRIBUTES)
    for start in range(0, n, CHUNK):
        part = ids[start : start + CHUNK].tolist()
        marks = ", ".join(["%s"] * len(part))
        sql = (
            "SELECT i.id, i.product_id, i.asset_id, p.store_id, p.price, p.availability, "
            f"p.is_active, p.brand, p.category, {attr_sql} FROM catalog_productimage i "
            "JOIN catalog_product p ON p.id = i.product_id "
            "LEFT JOIN catalog_productattributes a ON a.product_id = p.id "
            f"WHERE i.id IN ({marks})"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, part)
            rows = cursor.fetchall()
        if not rows:
            continue
        pos = np.searchsorted(ids, np.fromiter((r[0] for r in rows), np.int64, len(rows)))
        for row, at in zip(rows, pos.tolist(), strict=True):
            _, product, asset, store, price, availability, active, *coded = row
            cols["product"][at] = product
            cols["asset"][at] = -1 if asset is None else asset
            cols["store"][at] = store
            cols["price"][at] = np.nan if price is None else float(price)
            cols["in_stock"][at] = availability == "in_stock"
            cols["active"][at] = bool(active)
            for name, value in zip(CODED, coded, strict=True):
                if value:
                    cols[name][at] = tables[name].setdefault(value, len(tables[name]))
    return cols, tables


def _save(path: Path, values: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, values)
        f.flush()
        os.fsync(f.fileno())
