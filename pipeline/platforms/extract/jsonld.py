"""JSON-LD blocks of a page, read leniently and normalised to one shape.

Each block is parsed on its own (a broken block next to a good one loses nothing), with a
cleanup retry for HTML comments, CDATA wrappers, JS comments, trailing commas and semicolons.
Numbers keep their written digits (Decimal), so "24.990" stays distinguishable from 24.99.
Keys are canonicalised (`pricecurrency` → `priceCurrency`, `schema:name` → `name`), and
`{"@id": …}` references are resolved against the nodes of the page.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterator
from decimal import Decimal

from lxml import etree

logger = logging.getLogger(__name__)
MAX_DEPTH = 8
PROPERTIES = [
    "@type",
    "@id",
    "@graph",
    "@value",
    "name",
    "description",
    "image",
    "brand",
    "manufacturer",
    "sku",
    "gtin",
    "gtin8",
    "gtin12",
    "gtin13",
    "gtin14",
    "isbn",
    "mpn",
    "productID",
    "identifier",
    "offers",
    "price",
    "priceCurrency",
    "lowPrice",
    "highPrice",
    "availability",
    "priceSpecification",
    "priceType",
    "url",
    "category",
    "hasVariant",
    "isVariantOf",
    "productGroupID",
    "inProductGroupWithID",
    "variesBy",
    "color",
    "size",
    "material",
    "pattern",
    "mainEntity",
    "additionalProperty",
    "propertyID",
    "value",
    "contentUrl",
    "offerCount",
    "itemOffered",
]
_CANON = {p.lower(): p for p in PROPERTIES}
# data-vocabulary.org (Google's retired vocabulary, still in old themes) names.
_CANON |= {"offerdetails": "offers", "currency": "priceCurrency"}
# Where the page's own product may sit inside another node (WebPage → mainEntity).
CONTAINERS = ("@graph", "mainEntity", "itemOffered")


def canonical_key(key: str) -> str:
    if not key.startswith("@"):
        key = re.sub(r"^(?:https?://schema\.org/|schema:)", "", key, flags=re.I)
    return _CANON.get(key.lower(), key)


def canonicalize(data: object, depth: int = 0) -> object:
    """The same data with canonical property names; deeper than MAX_DEPTH is cut off."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(data, list):
        return [canonicalize(v, depth + 1) for v in data[:200]]
    if isinstance(data, dict):
        return {canonical_key(str(k)): canonicalize(v, depth + 1) for k, v in data.items()}
    return data


def _cleanup(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"^\s*(<!--|<!\[CDATA\[|//[^\n]*\n)+", "", text)
    text = re.sub(r"(?:\s*(?:-->|\]\]>|;|//[^\n\"]*))+\s*$", "", text.strip())
    return re.sub(r",\s*([}\]])", r"\1", text)


def _candidates(text: str):
    """The block as written, cleaned up, HTML-unescaped, and as a list of glued objects."""
    yield text
    cleaned = _cleanup(text)
    yield cleaned
    if "&quot;" in cleaned or "&#34;" in cleaned:
        yield html.unescape(cleaned)
    if re.search(r"}\s*,?\s*{", cleaned):
        yield "[" + re.sub(r"}\s*,?\s*{", "},{", cleaned) + "]"  # {…}{…} or {…},{…}


def loads(text: str) -> object | None:
    for candidate in _candidates(text):
        try:
            return json.loads(candidate, strict=False, parse_float=Decimal)
        except (ValueError, RecursionError):
            continue
    return None


def json_ld_blocks(tree: etree._Element) -> tuple[list[object], int]:
    """Parsed, canonicalised JSON-LD blocks and how many were unreadable."""
    blocks, bad = [], 0
    scripts = tree.xpath('//script[contains(translate(@type, "LDJSON", "ldjson"), "ld+json")]')
    for script in scripts:
        text = script.text or ""
        data = loads(text)
        if data is None:
            bad += 1
            logger.debug("unreadable JSON-LD block: %.80r", text)
            continue
        blocks.append(canonicalize(data))
    return blocks, bad


def types(node: dict) -> set[str]:
    """Lower-case schema.org type names of a node ("Product", "schema:Product" → "product")."""
    raw = node.get("@type", [])
    raw = raw if isinstance(raw, list) else [raw]
    return {str(t).rsplit("/", 1)[-1].rsplit(":", 1)[-1].lower() for t in raw}


def walk(data: object, depth: int = 0) -> Iterator[dict]:
    """Top-level nodes, list items and nodes under @graph / mainEntity, in page order."""
    if depth > MAX_DEPTH:
        return
    if isinstance(data, list):
        for item in data:
            yield from walk(item, depth + 1)
    elif isinstance(data, dict):
        yield data
        for key in CONTAINERS:
            if isinstance(data.get(key), (list, dict)):
                yield from walk(data[key], depth + 1)


def index_ids(data: object, found: dict[str, dict] | None = None, depth: int = 0) -> dict:
    """Every node with an @id and more than the @id, by @id."""
    found = {} if found is None else found
    if depth > MAX_DEPTH:
        return found
    if isinstance(data, list):
        for item in data:
            index_ids(item, found, depth + 1)
    elif isinstance(data, dict):
        if isinstance(data.get("@id"), str) and len(data) > 1:
            found.setdefault(data["@id"], data)
        for value in data.values():
            index_ids(value, found, depth + 1)
    return found


def resolve(value: object, ids: dict[str, dict]) -> object:
    """A bare {"@id": …} reference replaced by the node it names (one level)."""
    if isinstance(value, list):
        return [resolve(v, ids) for v in value]
    if isinstance(value, dict) and set(value) == {"@id"}:
        return ids.get(str(value["@id"]), value)
    return value


def resolve_deep(node: dict, ids: dict[str, dict], depth: int = 3) -> dict:
    """A copy of `node` whose {"@id"} references are resolved down to `depth` levels
    (a product's brand, its offers, its variants and their offers)."""
    if depth <= 0:
        return node
    out = {}
    for key, value in node.items():
        value = resolve(value, ids)
        if isinstance(value, dict) and value is not node:
            value = resolve_deep(value, ids, depth - 1)
        elif isinstance(value, list):
            value = [resolve_deep(v, ids, depth - 1) if isinstance(v, dict) else v for v in value]
        out[key] = value
    return out
