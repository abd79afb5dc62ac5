"""Catalogue writes. The pipeline calls these; the admin and commands never write around them.

Upserts rely on the database's unique constraints (INSERT ... ON CONFLICT DO UPDATE), so a
re-run or a duplicate in a listing cannot create a second product or a second stored image.
Each function is one short transaction (a listing page, one image), never a whole crawl, so the
site keeps reading while the pipeline writes.

One package, one import path: `catalog.services.<name>` for everything below (callers look names
up here at call time, so a test may monkeypatch them here). Modules by subject: `data` (what
the pipeline hands over), `products` (upserts), `images` (stored images), `crawls` (stores,
crawl runs, fetch state).
"""

from catalog.services.crawls import (
    MAX_RUN_ERRORS,
    FetchedURL,
    create_store,
    finish_crawl_run,
    mark_interrupted_runs,
    pause_store,
    record_fetch_states,
    start_crawl_run,
)
from catalog.services.data import (
    IDENTITY_FIELDS,
    MAX_VARIANTS,
    PRODUCT_FIELDS,
    VARIANT_FIELDS,
    ProductData,
    VariantData,
    product_summary,
)
from catalog.services.images import (
    defer_images,
    flag_shared_images,
    get_or_create_asset,
    mark_image_downloaded,
    mark_image_failed,
)
from catalog.services.products import (
    UpsertCounts,
    classify_products,
    count_existing_products,
    deactivate_missing_products,
    touch_products,
    upsert_products,
)

__all__ = [
    "IDENTITY_FIELDS",
    "MAX_RUN_ERRORS",
    "MAX_VARIANTS",
    "PRODUCT_FIELDS",
    "VARIANT_FIELDS",
    "FetchedURL",
    "ProductData",
    "UpsertCounts",
    "VariantData",
    "classify_products",
    "count_existing_products",
    "create_store",
    "deactivate_missing_products",
    "defer_images",
    "finish_crawl_run",
    "flag_shared_images",
    "get_or_create_asset",
    "mark_image_downloaded",
    "mark_image_failed",
    "mark_interrupted_runs",
    "pause_store",
    "product_summary",
    "record_fetch_states",
    "start_crawl_run",
    "touch_products",
    "upsert_products",
]
