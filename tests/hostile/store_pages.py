"""Hostile pages for the store-side suite, served by demo shops on 127.0.0.1.

`serve_product_page(shop, product, **fields)` replaces a schema.org shop's page for `product`
with a page whose only markup is one JSON-LD Product built from `fields`; `raw_json` lets a test
put escapes such as a lone surrogate (\\ud800) into the JSON text itself.
"""

from __future__ import annotations

import json

from pipeline.scrape import add_store


def product_json(shop, product, **fields) -> str:
    url = shop.product_url(product.id)
    data = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": product.title,
        "sku": f"H-{product.id}",
        "url": url,
        "image": [shop.image_url(product.id)],
        "offers": {
            "@type": "Offer",
            "price": "12.50",
            "priceCurrency": "EUR",
            "availability": "https://schema.org/InStock",
        },
    }
    data.update(fields)
    return json.dumps(data)


def serve_product_page(shop, product, *, raw_json: str | None = None, **fields) -> str:
    """Serve a hostile page at `product`'s URL; returns the page's path."""
    body = raw_json if raw_json is not None else product_json(shop, product, **fields)
    html = (
        "<!DOCTYPE html><html><head><meta charset=utf-8><title>hostile</title>"
        f'<script type="application/ld+json">{body}</script></head><body>hi</body></html>'
    )
    path = shop.product_url(product.id)[len(shop.base_url) :]
    shop.add_fault(path, "wrong_type", content_type="text/html; charset=utf-8", body=html.encode())
    return path


def scrape_one(shop, **store):
    """Register `shop` and crawl every store; returns (this store's report, the whole report)."""
    from pipeline.scrape import scrape_stores

    added = add_store(shop.base_url, crawl_delay=0.0, **store)
    report = scrape_stores()
    return next(s for s in report.stores if s.store == added.slug), report
