"""Which product nodes on a page are the page's own product, and which are its variants.

Pages carry more than one Product: one node per size or colour (same name or the same page
URL), a ProductGroup with variants linked by `isVariantOf` / `inProductGroupWithID`, or the
main product next to "related products". Siblings of one product are folded into a
ProductGroup-shaped node whose `hasVariant` lists them; among what is left the main product
is the one whose URL or @id is the page's (canonical) URL, else whose name is the <h1>, else
the first that has offers, else the first.
"""

from __future__ import annotations

from urllib.parse import urljoin

from pipeline.platforms.extract.document import bare_url
from pipeline.platforms.extract.jsonld import resolve, types
from pipeline.platforms.extract.offers import as_list, first

PRODUCT_TYPES = {"product", "productgroup", "individualproduct", "productmodel", "someproducts"}
LISTING_NODES = 3
NAME_SEPARATORS = (" - ", " \u2013 ", " \u2014 ", " (", ", ", " / ", " | ", ": ")
OFFERED_TYPES = {"book", "vehicle", "car", "motorizedbicycle", "softwareapplication"}


def is_product(node: dict) -> bool:
    kinds = types(node)
    return bool(kinds & PRODUCT_TYPES) or bool(kinds & OFFERED_TYPES and node.get("offers"))


def _name(node: dict) -> str:
    value = first(node.get("name"))
    return " ".join(value.split()).casefold() if isinstance(value, str) else ""


def _group_keys(node: dict) -> set[str]:
    keys = {str(v) for v in as_list(node.get("productGroupID")) if v}
    if isinstance(node.get("@id"), str):
        keys.add(node["@id"])
    return keys


def attach_variants(nodes: list[dict], ids: dict[str, dict]) -> list[dict]:
    """Groups with their variants resolved and attached; variant nodes removed from the list."""
    groups = [n for n in nodes if "productgroup" in types(n)]
    for group in groups:
        group["hasVariant"] = [v for v in as_list(resolve(group.get("hasVariant"), ids))]
    taken: set[int] = set()
    for node in nodes:
        if node in groups:
            continue
        parent = resolve(first(node.get("isVariantOf")), ids)
        links = {str(v) for v in as_list(node.get("inProductGroupWithID")) if v}
        if isinstance(parent, dict):
            links |= _group_keys(parent)
        for group in groups:
            if links & _group_keys(group) or any(v is node for v in group["hasVariant"]):
                if not any(v is node for v in group["hasVariant"]):
                    group["hasVariant"].append(node)
                taken.add(id(node))
    return [n for n in nodes if id(n) not in taken]


def _same_product(a: dict, b: dict) -> bool:
    urls = {bare_url(str(first(n.get("url")) or "")) for n in (a, b)}
    return (_name(a) and _name(a) == _name(b)) or (len(urls) == 1 and "" not in urls)


def fold_siblings(nodes: list[dict]) -> list[dict]:
    """Nodes describing one product (one per size) folded into one group-shaped node."""
    folded: list[dict] = []
    for node in nodes:
        home = next(
            (
                f
                for f in folded
                if not {"productgroup"} & (types(node) | types(f["_first"]))
                and _same_product(f["_first"], node)
            ),
            None,
        )
        if home is None:
            folded.append({"_first": node, "_members": [node]})
        else:
            home["_members"].append(node)
    return [_as_group(f["_members"]) for f in folded]


def _distinct(members: list[dict]) -> bool:
    """Whether same-named nodes are sizes/colours (own SKU, URL or name), not one node twice."""
    for key in ("sku", "url", "name", "gtin13", "gtin"):
        values = {str(first(m.get(key))) for m in members if first(m.get(key))}
        if len(values) > 1:
            return True
    return False


def _as_group(members: list[dict]) -> dict:
    if len(members) == 1 or not _distinct(members):
        merged = dict(members[0])  # the same product twice (theme + app): one fills the other
        for member in members[1:]:
            merged.update({k: v for k, v in member.items() if first(merged.get(k)) is None})
        return merged
    group = {k: v for k, v in members[0].items() if k not in ("offers", "sku", "gtin13", "mpn")}
    group["@type"] = "ProductGroup"
    group["name"] = _common_name([str(first(m.get("name")) or "") for m in members])
    group["image"] = [i for m in members for i in as_list(m.get("image"))]
    group["hasVariant"] = members
    return group


def _common_name(names: list[str]) -> str:
    """ "Runner 2" from "Runner 2 - US 8" and "Runner 2 - US 9"; the first name if none."""
    prefix = names[0]
    for name in names[1:]:
        while prefix and not name.startswith(prefix):
            prefix = prefix[:-1]
    if prefix != names[0]:
        cut = max(prefix.rfind(sep) for sep in NAME_SEPARATORS)
        prefix = prefix[:cut] if cut > 0 else ""
    return prefix if len(prefix) >= 3 else names[0]


def main_node(nodes: list[dict], page_urls: set[str], title: str, base: str = "") -> dict | None:
    """The page's own product among candidate nodes (see module docstring).

    None when LISTING_NODES or more unrelated products match neither the page's URL nor its
    heading: that is a category or search page, not one product's page.
    """
    wanted = " ".join(title.split()).casefold()

    def score(item: tuple[int, dict]) -> tuple[bool, bool, bool, int]:
        index, node = item
        links = (first(node.get("url")), node.get("@id"))
        urls = {bare_url(urljoin(base, u)) for u in links if isinstance(u, str) and u}
        name = _name(node)
        named = bool(wanted and name) and (name == wanted or name in wanted or wanted in name)
        return (bool(urls & page_urls), named, bool(node.get("offers")), -index)

    if not nodes:
        return None
    best = max(enumerate(nodes), key=score)
    if len(nodes) >= LISTING_NODES and not any(score(best)[:2]):
        return None
    return best[1]


def is_same_item(a: dict, b: dict) -> bool:
    """Whether two nodes (JSON-LD and microdata) describe one product, for gap filling."""
    name_a, name_b = _name(a), _name(b)
    if not name_a or not name_b or name_a in name_b or name_b in name_a:
        return True
    urls = [bare_url(str(first(n.get("url")) or "")) for n in (a, b)]
    return urls[0] == urls[1] != ""
