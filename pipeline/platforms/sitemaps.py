"""Sitemap parsing (urlset and index, .gz) without XML entity tricks.

Documents with a DOCTYPE or ENTITY declaration are refused (billion laughs, external entities);
gzip is inflated with a cap on the decoded size; at most 50,000 entries per file, as the
protocol allows.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from lxml import etree

from pipeline.exceptions import FetchError

MAX_SITEMAP_BYTES = 50 * 1024 * 1024
MAX_ENTRIES = 50_000


@dataclass
class SitemapEntry:
    loc: str
    lastmod: str = ""


@dataclass
class Sitemap:
    is_index: bool
    entries: list[SitemapEntry]


def _gunzip(body: bytes) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = inflater.decompress(body, MAX_SITEMAP_BYTES + 1)
    if len(out) > MAX_SITEMAP_BYTES or inflater.unconsumed_tail:
        raise FetchError(f"gzipped sitemap inflates past {MAX_SITEMAP_BYTES} bytes")
    return out


def parse_sitemap(body: bytes) -> Sitemap:
    if body[:2] == b"\x1f\x8b":
        try:
            body = _gunzip(body)
        except zlib.error as exc:
            raise FetchError(f"broken gzip sitemap: {exc}") from exc
    head = body[:4096].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in body.upper():
        raise FetchError("sitemap with DOCTYPE/ENTITY declarations refused")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=True)
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise FetchError(f"sitemap is not XML: {exc}") from exc
    if root is None:
        raise FetchError("sitemap is empty or not XML")
    is_index = etree.QName(root).localname == "sitemapindex"
    entries = []
    for node in root:
        if not isinstance(node.tag, str) or etree.QName(node).localname not in ("url", "sitemap"):
            continue
        loc = lastmod = ""
        for child in node:
            if not isinstance(child.tag, str):
                continue
            name = etree.QName(child).localname
            if name == "loc":
                loc = (child.text or "").strip()
            elif name == "lastmod":
                lastmod = (child.text or "").strip()
        if loc:
            entries.append(SitemapEntry(loc, lastmod))
        if len(entries) >= MAX_ENTRIES:
            break
    return Sitemap(is_index, entries)
