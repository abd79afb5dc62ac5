"""A page's hits hydrated in one statement: products with their store, their ready pictures
(with assets) and whether they have variants (selectors.hydrate_products(lean=True)).

At 1 M products nearly every hit of a unique query is a row no recent search read, so each
costs a few B-tree leaves the page cache lacks; what is left to save is around them. One
statement instead of two (products, then pictures), written here once per id count with short
SQL (the ORM's compiled text is three times longer, and Django's SQLite cursor rewrites every
placeholder of it with a regex per call), no ORDER BY (the products' default ordering sorted
rows nobody reads in that order; a product's pictures are put in order here), the ORM's own
converters only for the columns that have any (the decimals), one Store instance per store.

The instances are what `selectors.hydrate_products(lean=True)` always made: Products with
HIT_PRODUCT_FIELDS loaded (the rest deferred), `store` cached, `ready_images` (ProductImages
with an asset, by position then id, `asset` and `product` cached). `has_variants` is kept for
the request (`live_rows.scope_memo`), so `selectors.variants_of` skips the query for a page
none of whose products has a variant (most pages of most catalogues).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connections, router
from django.db.models.expressions import Col

from catalog.models import ImageAsset, Product, ProductImage, ProductVariant, Store
from search import live_rows
from search.id_query import instances

# Loaded on a hit's instances (selectors.HIT_PRODUCT_FIELDS / HIT_IMAGE_FIELDS, in model order).
PRODUCT_COLUMNS = (
    "id", "store_id", "url", "title", "brand", "category", "price", "currency", "availability",
    "sku", "gtin", "mpn", "list_price", "price_max",
)  # fmt: skip
STORE_COLUMNS = ("id", "slug", "name")
IMAGE_COLUMNS = ("id", "position", "asset_id", "product_id")
ASSET_COLUMNS = ("id", "width", "height", "thumbnail", "placeholder")


def variants_key(product_id: int) -> tuple:
    """The request memo's key for whether a product has variants (`live_rows.scope_memo`)."""
    return ("has_variants", product_id)


def hydrate(product_ids: list[int]) -> dict[int, Product]:
    """{id: Product} for those of `product_ids` that exist, in one statement (module docstring)."""
    ids = list(dict.fromkeys(int(i) for i in product_ids))  # numpy ints bind as blobs
    if not ids:
        return {}
    plan = _plan()
    with connections[plan.db].cursor() as cursor:
        cursor.execute(plan.sql(len(ids)), ids)
        rows = cursor.fetchall()
    return _instances(plan, rows)


def _instances(plan: _Plan, rows: list[tuple]) -> dict[int, Product]:
    n_product, n_store, n_image = len(PRODUCT_COLUMNS), len(STORE_COLUMNS), len(IMAGE_COLUMNS)
    store_at, image_at = n_product, n_product + n_store
    asset_at, flag_at = image_at + n_image, image_at + n_image + len(ASSET_COLUMNS)
    # Made per call: `instances` asks whether an init signal has receivers now.
    new_product, new_store, new_image, new_asset = (
        instances(model, plan.db, attnames) for model, attnames in plan.attnames.items()
    )
    found: dict[int, Product] = {}
    stores: dict[int, Store] = {}
    memo = live_rows.scope_memo()
    # Bound once: ~100 instances a page, each a few calls.
    set_store, set_asset, set_product = (
        plan.store_field.set_cached_value,
        plan.asset_field.set_cached_value,
        plan.product_field.set_cached_value,
    )
    product_conv, image_conv, asset_conv = (
        plan.product_converters, plan.image_converters, plan.asset_converters
    )  # fmt: skip
    for row in rows:
        pk = row[0]
        product = found.get(pk)
        if product is None:
            product = found[pk] = new_product(_converted(row[:n_product], product_conv))
            store = stores.get(row[store_at])
            if store is None:
                store = stores[row[store_at]] = new_store(row[store_at:image_at])
            set_store(product, store)
            product.ready_images = []
            if memo is not None:
                memo[variants_key(pk)] = bool(row[flag_at])
        if row[image_at] is not None:
            image = new_image(_converted(row[image_at:asset_at], image_conv))
            set_asset(image, new_asset(_converted(row[asset_at:flag_at], asset_conv)))
            set_product(image, product)
            product.ready_images.append(image)
    for product in found.values():
        if len(product.ready_images) > 1:
            product.ready_images.sort(key=_image_order)
    return found


def _converted(values: tuple, converters: list) -> tuple | list:
    if not converters:
        return values
    values = list(values)
    for pos, convert in converters:
        if values[pos] is not None:  # NULL stays None through every converter Django has
            values[pos] = convert(values[pos])
    return values


def _image_order(image: ProductImage) -> tuple[int, int]:
    return image.position, image.pk


class _Plan:
    """The statement and instance makers, per process and database (`_plan`)."""

    def __init__(self, db: str) -> None:
        self.db = db
        connection = connections[db]
        product, store = Product._meta, Store._meta
        image, asset, variant = ProductImage._meta, ImageAsset._meta, ProductVariant._meta
        q = connection.ops.quote_name

        def cols(alias: str, meta, names) -> str:
            return ", ".join(f"{alias}.{q(meta.get_field(n).column)}" for n in names)

        image_product = q(image.get_field("product").column)
        image_asset = q(image.get_field("asset").column)
        self._head = (
            f"SELECT {cols('p', product, PRODUCT_COLUMNS)}, {cols('s', store, STORE_COLUMNS)}, "
            f"{cols('i', image, IMAGE_COLUMNS)}, {cols('a', asset, ASSET_COLUMNS)}, "
            f"EXISTS (SELECT 1 FROM {q(variant.db_table)} v "
            f"WHERE v.{q(variant.get_field('product').column)} = p.{q(product.pk.column)}) "
            f"FROM {q(product.db_table)} p "
            f"JOIN {q(store.db_table)} s ON s.{q(store.pk.column)} = p.{q(product.get_field('store').column)} "
            f"LEFT JOIN {q(image.db_table)} i ON i.{image_product} = p.{q(product.pk.column)} "
            f"AND i.{image_asset} IS NOT NULL "
            f"LEFT JOIN {q(asset.db_table)} a ON a.{q(asset.pk.column)} = i.{image_asset} "
            f"WHERE p.{q(product.pk.column)} IN ("
        )  # fmt: skip
        self._sql: dict[int, str] = {}
        self.product_converters = _converters(connection, "p", Product, PRODUCT_COLUMNS)
        self.attnames = {
            model: [model._meta.get_field(n).attname for n in names]
            for model, names in (
                (Product, PRODUCT_COLUMNS), (Store, STORE_COLUMNS),
                (ProductImage, IMAGE_COLUMNS), (ImageAsset, ASSET_COLUMNS),
            )
        }  # fmt: skip
        self.store_field = product.get_field("store")
        self.asset_field, self.product_field = image.get_field("asset"), image.get_field("product")
        self.image_converters = _converters(connection, "i", ProductImage, IMAGE_COLUMNS)
        self.asset_converters = _converters(connection, "a", ImageAsset, ASSET_COLUMNS)

    def sql(self, count: int) -> str:
        found = self._sql.get(count)
        if found is None:
            found = self._sql[count] = self._head + ", ".join(["%s"] * count) + ")"
        return found


def _converters(connection, alias: str, model, names) -> list[tuple[int, Callable[[Any], Any]]]:
    """(position, value -> Python value) for the columns the ORM converts when read (its own
    converters: a SQLite decimal quantized to the field's places, as the ORM returns it)."""
    found = []
    for pos, name in enumerate(names):
        field = model._meta.get_field(name)
        col = Col(alias, field)
        convs = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
        if convs:
            found.append((pos, _chain(convs, col, connection)))
    return found


def _chain(convs: list, expression, connection) -> Callable[[Any], Any]:
    if len(convs) == 1:
        convert = convs[0]
        return lambda value: convert(value, expression, connection)

    def run(value):
        for convert in convs:
            value = convert(value, expression, connection)
        return value

    return run


_plans: dict[str, _Plan] = {}


def _plan() -> _Plan:
    db = router.db_for_read(Product)
    plan = _plans.get(db)
    if plan is None:
        plan = _plans[db] = _Plan(db)
    return plan
