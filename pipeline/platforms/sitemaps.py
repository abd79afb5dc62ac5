"""Sitemap parsing (urlset and index, .gz), streamed, without XML entity tricks.

`iter_sitemap(body)` yields entries one at a time: gzip is inflated in slices under a cap on the
total decoded size, the XML is fed to a pull parser in slices, and each <url>/<sitemap> element
is dropped as soon as it is read, so memory does not grow with the number of entries (no tree,
no list). Documents with a DOCTYPE or ENTITY declaration are refused (billion laughs, external
entities); at most 50,000 entries per file, as the protocol allows; a <loc> longer than the
protocol's 2,048 characters is skipped.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from pipeline.exceptions import FetchError

MAX_SITEMAP_BYTES = 50 * 1024 * 1024  # decoded; the protocol's limit for one file
MAX_ENTRIES = 50_000
MAX_LOC_CHARS = 2048
MAX_ELEMENTS = 1_000_000  # 20 per entry at 50,000 entries (loc, lastmod, images, ...)
SLICE = 64 * 1024
_FORBIDDEN = (b"<!doctype", b"<!entity")


@dataclass
class SitemapEntry:
    loc: str
    lastmod: str = ""


@dataclass
class Sitemap:
    is_index: bool
    entries: list[SitemapEntry]


def _gunzip_slices(body: bytes) -> Iterator[bytes]:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    total = 0
    data = body
    try:
        while data or inflater.unconsumed_tail:
            out = inflater.decompress(data or inflater.unconsumed_tail, SLICE)
            data = b""
            total += len(out)
            if total > MAX_SITEMAP_BYTES:
                raise FetchError(f"gzipped sitemap inflates past {MAX_SITEMAP_BYTES} bytes")
            if not out and not inflater.unconsumed_tail:
                break
            yield out
    except zlib.error as exc:
        raise FetchError(f"broken gzip sitemap: {exc}") from exc


def _slices(body: bytes) -> Iterator[bytes]:
    if body[:2] == b"\x1f\x8b":
        yield from _gunzip_slices(body)
        return
    view = memoryview(body)
    for start in range(0, len(body), SLICE):
        yield bytes(view[start : start + SLICE])


def _localname(node: etree._Element) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def _is_entry(node: etree._Element, loc: str) -> bool:
    return _localname(node) in ("url", "sitemap") and 0 < len(loc) <= MAX_LOC_CHARS


def iter_sitemap(body: bytes) -> Iterator[tuple[bool, SitemapEntry]]:
    """Yield (is_index, entry) for each entry of a sitemap or sitemap index, streaming.

    Every element is detached from the tree at its end tag (an entry's <loc>/<lastmod> after
    their text is read), so neither millions of entries nor an entry with millions of children
    pile up; more than MAX_ELEMENTS elements (a CPU bomb of tiny tags) ends the document.
    Raises FetchError for a refused or unreadable document (possibly after some entries).
    One loop on purpose (about 50 lines): the streaming state (the current entry's loc and
    lastmod, the entry and element budgets, the tail kept to catch a split DOCTYPE) lives across
    chunks and events, and split up it would travel through every helper.
    """
    parser = etree.XMLPullParser(
        events=("end",),
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        recover=True,
        load_dtd=False,
        remove_comments=True,
        remove_pis=True,
    )
    loc, lastmod, count, elements, tail = "", "", 0, 0, b""
    try:
        for chunk in _slices(body):
            if any(word in (tail + chunk).lower() for word in _FORBIDDEN):
                raise FetchError("sitemap with DOCTYPE/ENTITY declarations refused")
            tail = chunk[-16:]
            parser.feed(chunk)
            for _event, node in parser.read_events():
                elements += 1
                if elements > MAX_ELEMENTS:
                    raise FetchError(f"sitemap has more than {MAX_ELEMENTS} elements; refused")
                parent = node.getparent()
                if parent is None:  # the root's end tag
                    continue
                grand = parent.getparent()
                if grand is None and _is_entry(node, loc):  # an entry ended
                    count += 1
                    yield _localname(parent) == "sitemapindex", SitemapEntry(loc, lastmod)
                    if count >= MAX_ENTRIES:
                        return
                if grand is None:
                    loc = lastmod = ""
                elif grand.getparent() is None:  # a child of an entry: keep what we need
                    name = _localname(node)
                    if name == "loc":
                        loc = (node.text or "").strip()
                    elif name == "lastmod":
                        lastmod = (node.text or "").strip()[:64]
                parent.remove(node)
        parser.close()
    except etree.XMLSyntaxError as exc:
        raise FetchError(f"sitemap is not XML: {exc}") from exc
    if not elements:
        raise FetchError("sitemap is empty or not XML")


def parse_sitemap(body: bytes) -> Sitemap:
    """The whole sitemap as a list (small documents and tests; the crawler streams)."""
    is_index, entries = False, []
    for is_index, entry in iter_sitemap(body):  # noqa: B007 (the last value is the answer)
        entries.append(entry)
    if not entries:
        is_index = _root_is_index(body)
    return Sitemap(is_index, entries)


def _root_is_index(body: bytes) -> bool:
    for chunk in _slices(body[:SLICE] if body[:2] != b"\x1f\x8b" else body):
        return b"<sitemapindex" in chunk.lower()
    return False
