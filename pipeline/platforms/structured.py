"""Compatibility module: product extraction lives in `pipeline.platforms.extract`."""

from pipeline.platforms.extract import canonical_url, extract_products, page_title, parse_html

__all__ = ["canonical_url", "extract_products", "page_title", "parse_html"]
