"""Finished search responses (HTML page, htmx fragment or API body) for repeated searches.

A repeat of a search already answered is served from here without the encoder, faiss or the
ranking queries. The key is the normalised query, filters, sort, page, response kind and the
index version (`page_key`), so publishing a new index version starts afresh.

Freshness: a cached response is served only while the products it shows are unchanged. With the
body it keeps a fingerprint of those products (`is_active`, price, list price, availability,
`updated_at`), re-read on every hit in ONE primary-key query over the (at most 24) shown ids; any
difference drops the entry and the caller renders anew. Changes the fingerprint does not see
(another store's offer for the same GTIN, a variant's stock, facet counts elsewhere in the
catalogue) are bounded by the entry's lifetime, MEEPO_SEARCH_PAGE_CACHE_SECONDS (default 60 s:
the same as the candidate-list cache in search.services, whose results already were that old).

Backend: Django's cache framework, alias MEEPO_SEARCH_PAGE_CACHE_ALIAS (default "search_pages",
a local-memory cache per worker process, 500 entries, LRU; see CACHES in meepo/settings.py): on
one VPS with two workers a repeat costs at most one miss per worker, and nothing has to be run or
secured beside the site. A shared backend (file-based, Redis) only needs CACHES.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.db import connection

logger = logging.getLogger(__name__)

# v2: fingerprints are driver rows (v1 held strings); a shared backend never mixes the two.
KEY_PREFIX = "meepo:page:v2:"


@dataclass(frozen=True)
class CachedPage:
    body: bytes
    content_type: str
    product_ids: tuple[int, ...]
    fingerprint: tuple
    headers: tuple[tuple[str, str], ...] = ()


def enabled() -> bool:
    return settings.MEEPO_SEARCH_PAGE_CACHE_SECONDS > 0


def page_key(*, kind: str, version: str | None, **parts: Any) -> str:
    """A cache key for one response: `kind` ("html", "htmx", "api"), the index version and any
    other parts that shape the response (query, filters, sort, offset, limit...), which must be
    normalised by the caller (e.g. `services.normalise_query`, a `SearchFilters`)."""
    raw = json.dumps({"kind": kind, "version": version, **parts}, sort_keys=True, default=repr)
    return KEY_PREFIX + hashlib.sha256(raw.encode()).hexdigest()


def product_fingerprint(product_ids: list[int] | tuple[int, ...]) -> tuple:
    """What the shown products look like now, in one primary-key query: the rows as the
    driver returns them, compared whole. The timestamp is read as text: parsing it into a
    datetime, and turning every value into a string, was half of this query's CPU (~0.09 of
    ~0.19 ms, paid on every page-cache hit and every page stored)."""
    if not product_ids:
        return ()
    marks = ", ".join(["%s"] * len(product_ids))
    sql = (
        "SELECT id, is_active, price, list_price, availability, CAST(updated_at AS TEXT) "
        f"FROM catalog_product WHERE id IN ({marks}) ORDER BY id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, list(product_ids))
        return tuple(map(tuple, cursor.fetchall()))


def _cache():
    return caches[settings.MEEPO_SEARCH_PAGE_CACHE_ALIAS]


def get_page(key: str) -> CachedPage | None:
    """The cached response for `key` if its products are unchanged, else None (and forgotten)."""
    if not enabled():
        return None
    page = _cache().get(key)
    if page is None:
        return None
    if product_fingerprint(page.product_ids) != page.fingerprint:
        _cache().delete(key)
        return None
    return page


def put_page(
    key: str,
    *,
    body: bytes,
    content_type: str,
    product_ids: list[int],
    headers: dict[str, str] | None = None,
) -> None:
    """Keep a finished response for `key`, with the fingerprint of the products it shows."""
    if not enabled():
        return
    ids = tuple(product_ids)
    page = CachedPage(
        body=bytes(body),
        content_type=content_type,
        product_ids=ids,
        fingerprint=product_fingerprint(ids),
        headers=tuple((headers or {}).items()),
    )
    _cache().set(key, page, timeout=settings.MEEPO_SEARCH_PAGE_CACHE_SECONDS)


def request_key(request, *, kind: str, version: str | None, **parts: Any) -> str:
    """The key of a GET search response: every query parameter (a page's links, notes and
    applied-filter chips are built from them), the response kind (page, htmx fragment, "more"
    fragment, API), the index version and any other `parts` that shape the body (the API's
    absolute URLs: its origin). Parameters are sorted, so their order does not split the cache;
    the query text is whitespace-normalised."""
    params = sorted(
        (name, [" ".join(v.split()) for v in values] if name == "q" else values)
        for name, values in request.GET.lists()
    )
    return page_key(kind=kind, version=version, params=params, **parts)


def cached_response(key: str):
    """An HttpResponse for `key` from the cache (its products unchanged), or None."""
    from django.http import HttpResponse

    page = get_page(key)
    if page is None:
        return None
    response = HttpResponse(page.body, content_type=page.content_type)
    for name, value in page.headers:
        response[name] = value
    response["X-Meepo-Cache"] = "hit"
    return response


def keep_response(key: str, response, product_ids: list[int]) -> None:
    """Keep a finished 200 response (body, content type, Vary) showing `product_ids`."""
    if response.status_code != 200 or getattr(response, "streaming", False):
        return
    headers = {name: response[name] for name in ("Vary",) if response.has_header(name)}
    put_page(
        key,
        body=response.content,
        content_type=response["Content-Type"],
        product_ids=product_ids,
        headers=headers,
    )


def clear() -> None:
    """Forget every cached response of this alias (tests)."""
    _cache().clear()
