"""What every platform parser produces, and the normalisation they share.

A platform module turns a store into `Listing`s: one per fetched listing URL (an API page, a
sitemap, a product page), each with the products it parsed, the ids it knows are unchanged
(304, same body hash, sitemap lastmod) and per-item failures with a reason. Values are
normalised here once: Decimal prices and ISO 4217 currencies (prices.py), one
availability vocabulary, absolute http(s) URLs, plain-text descriptions of bounded length.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from catalog.services import ProductData
from pipeline.platforms.prices import normalize_currency as normalize_currency
from pipeline.platforms.prices import parse_price as parse_price

TITLE_MAX = 500
DESCRIPTION_MAX = 20_000
AVAILABILITY = {
    "instock": "in_stock",
    "in_stock": "in_stock",
    "onlineonly": "in_stock",
    "instoreonly": "in_stock",
    "limitedavailability": "in_stock",
    "available": "in_stock",
    "true": "in_stock",
    "in stock": "in_stock",
    "outofstock": "out_of_stock",
    "out_of_stock": "out_of_stock",
    "soldout": "out_of_stock",
    "discontinued": "out_of_stock",
    "oos": "out_of_stock",
    "false": "out_of_stock",
    "out of stock": "out_of_stock",
    "preorder": "preorder",
    "presale": "preorder",
    "backorder": "preorder",
    "pending": "preorder",
    "madetoorder": "preorder",
    "availablefororder": "in_stock",
}


@dataclass
class Failure:
    ref: str  # URL or product id
    reason: str


@dataclass
class FetchRecord:
    """What to remember about a fetched URL (becomes a FetchState row)."""

    url: str
    status: int
    etag: str = ""
    last_modified: str = ""
    body_sha256: str = ""
    items: list = field(default_factory=list)
    error: str = ""


@dataclass
class Listing:
    url: str
    products: list[ProductData] = field(default_factory=list)
    unchanged_ids: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    records: list[FetchRecord] = field(default_factory=list)
    # Ids to keep alive although this URL failed for now (a 5xx product page is not a removal).
    kept_ids: list[str] = field(default_factory=list)
    complete: bool = True  # False when part of the store could not be listed

    def fail(self, ref: str, reason: str) -> Listing:
        """Part of the store could not be listed (a page failed): record why and mark the listing
        incomplete, so the crawl deactivates nothing on its account. Returns the listing."""
        self.failures.append(Failure(ref, reason))
        self.complete = False
        return self


def normalize_availability(value: object) -> str:
    if isinstance(value, bool):
        return "in_stock" if value else "out_of_stock"
    if not isinstance(value, str) or not value.strip():
        return "unknown"
    key = value.strip().rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].lower()
    squeezed = re.sub(r"[\s_\-]+", "", key)  # "Limited availability", "in-stock", "pre_order"
    return AVAILABILITY.get(key, AVAILABILITY.get(squeezed, "unknown"))


def plain_text(value: object, limit: int = DESCRIPTION_MAX) -> str:
    if not isinstance(value, str):
        return ""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", value, flags=re.S | re.I)
    text = re.sub(r"<br\s*/?>|</p>|</li>|</h\d>", "\n", text, flags=re.I)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r"\s*\n\s*", "\n", text).strip()
    return text[:limit]


def absolute_url(value: object, base: str) -> str:
    """Resolve relative and protocol-relative URLs; only http(s) results survive."""
    if not isinstance(value, str) or not value.strip():
        return ""
    url = urljoin(base, value.strip())
    return url if urlsplit(url).scheme in ("http", "https") and len(url) <= 2000 else ""


def unique(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for v in values:
        if v and v not in seen:
            seen[v] = None
    return list(seen)


def validate(product: ProductData) -> str | None:
    """Why a scraped product cannot be stored, or None when it can."""
    if not product.external_id:
        return "no product id"
    if not product.title:
        return "no title"
    if not product.url:
        return "no usable product URL"
    product.title = plain_text(product.title, TITLE_MAX)
    product.brand = product.brand[:200]
    product.category = product.category[:300]
    product.tags = [t[:100] for t in product.tags[:50]]
    if product.price is not None and not product.currency:
        return None  # a price without a currency is still worth keeping; currency stays blank
    return None
