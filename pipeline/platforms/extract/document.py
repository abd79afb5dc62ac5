"""The page as a browser sees it: decoded text, an lxml tree, its canonical URL and heading.

Decoding follows the browser order (HTTP charset, byte-order mark, <meta charset>, then
detection) through w3lib, so a UTF-8 page without <meta charset> is not read as Latin-1.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import lxml.html
from lxml import etree
from w3lib.encoding import html_to_unicode

from pipeline.platforms.base import absolute_url, plain_text

SITE_TITLE = re.compile(r"logo|site-?(?:title|name)|brand")
SITE_HEADER = re.compile(r"site|masthead|banner|top-?bar|navbar|page-header|main-header", re.I)
# Country-code domains whose "$", "kr" or "¥" mean a local currency (see prices.AMBIGUOUS).
_TLD_SUFFIX = re.compile(r"\.(?:com?\.)?([a-z]{2})$")


def decode_html(body: bytes, content_type: str = "") -> str:
    """The page as text, decoded as browsers do: HTTP charset, BOM, <meta charset>, detection."""
    _, text = html_to_unicode(content_type or None, body)
    return text


def parse_html(body: bytes, content_type: str = "") -> etree._Element | None:
    """The parsed page, or None when it is empty or not HTML at all."""
    text = decode_html(body, content_type).replace("\x00", "")
    if not text.strip():
        return None
    try:
        return lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError):
        return None


def bare_url(url: str) -> str:
    """A URL without fragment, query and trailing slash, for "is this the same page" tests."""
    parts = urlsplit(url)
    return f"{parts.netloc.lower().removeprefix('www.')}{parts.path.rstrip('/')}"


def canonical_url(tree: etree._Element | None, page_url: str) -> str:
    if tree is not None:
        for href in tree.xpath('//link[@rel="canonical"]/@href'):
            if url := absolute_url(href, page_url):
                return url.split("#")[0]
    return page_url.split("#")[0]


def _is_site_title(h1: etree._Element) -> bool:
    """A site logo or name set as <h1> (in the site header, labelled logo, linking home)."""
    label = f"{h1.get('class') or ''} {h1.get('id') or ''}".lower()
    if SITE_TITLE.search(label) or h1.xpath("./a[@href='/' or @href='./']"):
        return True
    for holder in h1.iterancestors("header", "nav"):
        words = f"{holder.tag} {holder.get('class') or ''} {holder.get('id') or ''}"
        if holder.tag == "nav" or holder.get("role") == "banner" or SITE_HEADER.search(words):
            return True
    return False


def main_heading(root: etree._Element) -> etree._Element | None:
    """The page's main <h1>: the first non-empty one that is not the site's logo or name."""
    for h1 in root.iter("h1"):
        if h1.text_content().strip() and not _is_site_title(h1):
            return h1
    return None


def heading(tree: etree._Element) -> str:
    """The main heading's text, whitespace collapsed ("" without one)."""
    h1 = main_heading(tree)
    return " ".join(h1.text_content().split())[:500] if h1 is not None else ""


def country_hint(tree: etree._Element, page_url: str) -> str:
    """A lower-case country or language code from the domain, else from <html lang>."""
    host = (urlsplit(page_url).hostname or "").lower()
    if match := _TLD_SUFFIX.search(host):
        return match.group(1)
    lang = (tree.get("lang") or "").lower().replace("_", "-")
    region = lang.split("-")[1] if "-" in lang else ""
    return region[:2] if len(region) == 2 else lang[:2]


def page_title(body: bytes, content_type: str = "") -> str:
    tree = parse_html(body, content_type)
    titles = tree.xpath("//title/text()") if tree is not None else []
    return plain_text(titles[0], 200) if titles else ""
