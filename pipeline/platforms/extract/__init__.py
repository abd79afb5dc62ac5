"""Product data from an HTML page: JSON-LD, microdata, OpenGraph/meta tags and visible text.

Modules: document (decoding, canonical URL), jsonld, microdata, meta, visible (readers),
offers and schema (schema.org nodes to ProductData), choose (main product, variants),
combine (field-by-field merge), page (`extract_products`, the entry point).
"""

from pipeline.platforms.extract.document import canonical_url, page_title, parse_html
from pipeline.platforms.extract.page import extract_products

__all__ = ["canonical_url", "extract_products", "page_title", "parse_html"]
