"""schema.org in RDFa Lite (`vocab`/`typeof`/`property`, as Drupal and some themes write it).

Read into the same canonical node shape as JSON-LD and microdata: an element with `typeof`
is a node, `property` elements under it (not under a nearer `typeof`) are its properties; a
value is the `content`, `href`, `src` or `resource` attribute, else the text. Head <meta
property="og:…"> tags have no `typeof` ancestor and are left to the meta reader.
"""

from __future__ import annotations

from lxml import etree

from pipeline.platforms.base import absolute_url
from pipeline.platforms.extract.jsonld import canonical_key

MAX_NODES = 50
URL_ATTRS = ("href", "src", "resource")


def _value(el: etree._Element, page_url: str) -> object:
    if el.get("content") is not None:
        return el.get("content")
    for attr in URL_ATTRS:
        if el.get(attr):
            return absolute_url(el.get(attr), page_url) or el.get(attr)
    return " ".join(" ".join(el.itertext()).split())


def _owner(el: etree._Element) -> etree._Element | None:
    return next((a for a in el.iterancestors() if a.get("typeof") is not None), None)


def _node(scope: etree._Element, page_url: str, depth: int = 0) -> dict:
    node: dict = {"@type": (scope.get("typeof") or "").split()}
    if scope.get("resource"):
        node["@id"] = absolute_url(scope.get("resource"), page_url)
    for el in scope.iterdescendants():
        if not isinstance(el.tag, str) or el.get("property") is None or _owner(el) is not scope:
            continue
        nested = el.get("typeof") is not None and depth < 4
        value = _node(el, page_url, depth + 1) if nested else _value(el, page_url)
        for name in el.get("property", "").split():
            key = canonical_key(name)
            node[key] = [*node[key], value] if isinstance(node.get(key), list) else (
                [node[key], value] if key in node else value
            )  # fmt: skip
    return node


def rdfa_nodes(tree: etree._Element, page_url: str) -> list[dict]:
    """Top-level RDFa nodes (elements with `typeof` and no `typeof` ancestor), in page order."""
    scopes = tree.xpath("//*[@typeof]")[:MAX_NODES]
    return [_node(s, page_url) for s in scopes if _owner(s) is None]
