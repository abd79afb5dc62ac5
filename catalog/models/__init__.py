"""The product catalogue: stores, products, images and per-URL crawl state.

Consistency lives in database constraints (one product per store + platform id, one stored image
per content hash, one fetch state per store + URL), so bulk pipeline writes cannot break it.
Products are never deleted by the pipeline: a product that leaves its store becomes inactive,
which keeps history and search-index ids valid. A product deleted by hand leaves a tombstone
(`deletions`) that search's "changed since the build" corrections read.

One module per seam, every name re-exported here so `from catalog.models import X` and the
migrations stay as they were: `base` (timestamps), `stores` (Store, Platform), `crawling`
(CrawlRun, Host, FetchState), `products` (Product, its attributes and value rules), `images`
(ImageAsset, ProductImage, the indexable rule), `variants` (ProductVariant), `deletions`
(ProductDeletion).
"""

from catalog.models.base import TimestampedModel
from catalog.models.crawling import CrawlRun, FetchState, Host
from catalog.models.deletions import ProductDeletion
from catalog.models.images import ImageAsset, ProductImage, ProductImageQuerySet
from catalog.models.products import (
    Product,
    ProductAttributes,
    ProductQuerySet,
    amount_text,
    combined_availability,
    on_sale,
)
from catalog.models.stores import Platform, Store
from catalog.models.variants import ProductVariant

__all__ = [
    "CrawlRun",
    "FetchState",
    "Host",
    "ImageAsset",
    "Platform",
    "Product",
    "ProductAttributes",
    "ProductDeletion",
    "ProductImage",
    "ProductImageQuerySet",
    "ProductQuerySet",
    "ProductVariant",
    "Store",
    "TimestampedModel",
    "amount_text",
    "combined_availability",
    "on_sale",
]
