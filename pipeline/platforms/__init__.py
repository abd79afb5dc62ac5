"""Platform parsers: Shopify (/products.json), WooCommerce (Store API), schema.org pages.

Each module offers `detect(ctx) -> bool` and `iter_listings(ctx) -> Iterator[Listing]`.
`detect_platform` tries them cheapest-first: the two JSON APIs, then sitemaps/pages.
"""

from types import ModuleType

from pipeline.platforms import schema_org, shopify, woocommerce
from pipeline.platforms.context import CrawlContext

PLATFORMS: dict[str, ModuleType] = {
    "shopify": shopify,
    "woocommerce": woocommerce,
    "schema_org": schema_org,
}


def detect_platform(ctx: CrawlContext) -> str:
    """The store's platform key, or "" when nothing answers usefully."""
    for name, module in PLATFORMS.items():
        if module.detect(ctx):
            return name
    return ""
