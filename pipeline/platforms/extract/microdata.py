"""schema.org microdata items (via extruct) in the same canonical shape as JSON-LD nodes.

Repeated properties stay lists (the offers and schema readers take what they need from a
list), nested items become nested dicts with "@type", so a list of offers, an Offer inside an
Offer or a repeated `availability` read exactly like their JSON-LD twins. Before extruct reads
an itemprop="price" element that has no `content`, struck-through parts (<del>, <s>, "old
price" classes) are removed from a copy of it, so "79,90 € 71,91 €" reads as the sale price.
"""

from __future__ import annotations

import copy
import logging
import re

from lxml import etree

from pipeline.platforms.extract.jsonld import canonical_key

logger = logging.getLogger(__name__)
OLD_PRICE = re.compile(
    r"(?:^|[\s_-])(?:old|was|regular|compare|list|original|before|strike|crossed|rrp|uvp|"
    r"msrp|instead)(?:[\s_-]|price|$)",
    re.I,
)
STRUCK = "del|s|strike"


def is_struck(el: etree._Element) -> bool:
    """Whether an element shows a price that no longer applies (crossed out, "was")."""
    if not isinstance(el.tag, str):
        return False
    if el.tag.lower() in STRUCK.split("|"):
        return True
    label = f"{el.get('class') or ''} {el.get('id') or ''} {el.get('itemprop') or ''}"
    return bool(OLD_PRICE.search(label))


def drop_struck(el: etree._Element) -> None:
    """Remove struck-through descendants of `el` in place (keeping their tails)."""
    for child in [c for c in el.iterdescendants() if is_struck(c)]:
        parent = child.getparent()
        if parent is not None:
            child.drop_tree() if hasattr(child, "drop_tree") else parent.remove(child)


def _cleaned(tree: etree._Element) -> etree._Element:
    tree = copy.deepcopy(tree)
    for el in tree.xpath("//*[@itemprop and not(@content)]"):
        if "price" in (el.get("itemprop") or "").lower().split():
            drop_struck(el)
    return tree


def to_node(value: object, depth: int = 0) -> object:
    """extruct's {"type", "properties"} items as {"@type", props…} dicts, recursively."""
    if depth > 8:
        return None
    if isinstance(value, list):
        return [to_node(v, depth + 1) for v in value[:200]]
    if not isinstance(value, dict):
        return value
    if "properties" not in value:
        return {canonical_key(k): to_node(v, depth + 1) for k, v in value.items()}
    node: dict = {"@type": value.get("type") or []}
    if value.get("id"):
        node["@id"] = value["id"]
    for key, prop in dict(value.get("properties") or {}).items():
        node[canonical_key(key)] = to_node(prop, depth + 1)
    return node


def microdata_nodes(tree: etree._Element, page_url: str) -> list[dict]:
    """Every top-level microdata item on the page as a canonical node, in page order."""
    if not tree.xpath("//*[@itemscope]"):
        return []
    try:
        from extruct.w3cmicrodata import MicrodataExtractor

        items = MicrodataExtractor().extract_items(_cleaned(tree), base_url=page_url)
    except Exception:  # extruct raises anything on odd markup; microdata is then absent
        logger.debug("microdata extraction failed on %s", page_url, exc_info=True)
        return []
    return [n for n in (to_node(i) for i in items) if isinstance(n, dict)]
