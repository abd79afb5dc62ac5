"""schema.org microdata items (via extruct) in the same canonical shape as JSON-LD nodes.

Repeated properties stay lists (the offers and schema readers take what they need from a
list), nested items become nested dicts with "@type", so a list of offers, an Offer inside an
Offer or a repeated `availability` read exactly like their JSON-LD twins. Before extruct reads
an itemprop="price" element that has no `content`, struck-through parts (<del>, <s>, "old
price" classes) are removed from a copy of it, so "79,90 € 71,91 €" reads as the sale price.
"""

from __future__ import annotations

import copy
import itertools
import logging
import re

from lxml import etree

from pipeline.platforms.extract.jsonld import canonical_key

logger = logging.getLogger(__name__)
# Class/id words that mark a crossed-out or "was" price ("old-price", "price--rrp", "<s>").
OLD_WORDS = {"old", "was", "regular", "compare", "original", "before", "strike", "strikethrough"}
OLD_WORDS |= {"crossed", "rrp", "uvp", "msrp", "instead", "oldprice", "listprice", "wasprice"}
# The same in the languages shops write their class names in ("prezzo-pieno", "eski-fiyat").
OLD_WORDS |= {"streichpreis", "alter", "ancien", "barre", "anterior", "pieno", "barrato"}
OLD_WORDS |= {
    "secondary",
    "oude",
    "ordinarie",
    "ordinary",
    "normalpris",
    "forpris",
    "eski",
    "regi",
    "stara",
}
# Class words of the selling price when a block shows two ("preco-por", "yeni-fiyat").
SELL_WORDS = {
    "primary",
    "sale",
    "special",
    "now",
    "new",
    "current",
    "final",
    "offer",
    "promo",
    "actual",
}
SELL_WORDS |= {"por", "scontato", "akcios", "yeni", "rea", "nuevo", "neu", "nouveau", "oferta"}
LAZY_SRC = ("data-src", "data-original", "data-lazy-src", "data-zoom-image", "data-srcset")
# Stand-ins lazy loaders and themes put where the photo will be.
PLACEHOLDER = re.compile(
    r"^data:|placeholder|(?:^|/)(?:blank|spacer|loading|lazy|pixel|1x1|transparent|empty|grey|gray)"
    r"[\w-]*\.(?:gif|png|svg)(?:$|\?)",
    re.I,
)
# Pictures that are not the product: logos, icons, badges (word-bounded: "iconic-bag.jpg" is fine).
NOT_PHOTO = re.compile(
    r"(?:^|[\W_])(?:logo|icons?|sprite|payment|flags?|avatar|badge|banner|favicon|placeholder)"
    r"(?:[\W_]|$)",
    re.I,
)
STRUCK_TAGS = ("del", "s", "strike")
_WORD_SPLIT = re.compile(r"[\s_\-]+")
_LIST_PRICE = re.compile(r"list[\s_\-]*price")
_PRICE_FROM = re.compile(r"pre(?:c|ç|ci)o[\s_\-]*de\b")
_CROSSED = re.compile(r"non[\s_\-]*sale|line[\s_\-]*through")
STATE = re.compile(r"^(?:has|with|is|on|show|hide)[-_]")


def label_parts(el: etree._Element) -> set[str]:
    """The words of an element's class, id and itemprop ("price-item--regular" → price, item…)."""
    raw = f"{el.get('class') or ''} {el.get('id') or ''} {el.get('itemprop') or ''}"
    raw += f" {el.get('data-hook') or ''}"
    if not raw.strip():
        return set()
    # State modifiers ("has-discount", "with-list-price") describe the block, not its content.
    label = " ".join(t for t in raw.lower().split() if not STATE.match(t))
    parts = set(_WORD_SPLIT.split(label)) - {""}
    if _LIST_PRICE.search(label):
        parts.add("listprice")
    if _CROSSED.search(label):
        parts.add("strike")  # BigCommerce "price--non-sale", "price--line-through"
    if _PRICE_FROM.search(label):
        parts.add("old")  # "preco-de" / "precio-de": the "from" price of "De … Por …"
    return parts


def is_small(el: etree._Element, limit: int = 8) -> bool:
    """Whether an element has at most `limit` descendants (cheap: stops counting there)."""
    return next(itertools.islice(el.iterdescendants(), limit, None), None) is None


def is_struck(el: etree._Element) -> bool:
    """Whether an element shows a price that no longer applies (crossed out, "was")."""
    if not isinstance(el.tag, str):
        return False
    return el.tag.lower() in STRUCK_TAGS or bool(label_parts(el) & OLD_WORDS)


def drop_struck(el: etree._Element) -> bool:
    """Remove struck-through amounts under `el` in place (keeping their tails); any removed?

    A struck element without digits is a label ("Regular price") and stays for the text cues.
    """
    struck = [
        c for c in el.iterdescendants() if is_struck(c) and re.search(r"\d", c.text_content())
    ]
    for child in struck:
        if child.getparent() is not None:
            child.drop_tree()
    return bool(struck)


def _cleaned(tree: etree._Element) -> etree._Element:
    """A copy with struck parts out of price texts and lazy-loaded images' real URLs in src."""
    tree = copy.deepcopy(tree)
    for el in tree.xpath("//*[@itemprop and not(@content)]"):
        if "price" in (el.get("itemprop") or "").lower().split():
            drop_struck(el)
    for img in tree.xpath("//img[@itemprop]"):
        lazy = next((img.get(a) for a in LAZY_SRC if img.get(a)), "")
        if lazy and (not img.get("src") or PLACEHOLDER.search(img.get("src", ""))):
            img.set("src", lazy.split(",")[0].split()[0])
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
