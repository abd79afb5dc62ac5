"""What a shopper reads on a page with little or no product markup: heading, price, stock.

Used only for fields the markup did not give. Precision first: a price is taken only from an
element whose class, id or itemprop says "price", that shows an amount with a currency (or the
markup's currency), after the page heading, outside navigation, footers and "related
products" blocks, with struck-through amounts removed; several different amounts that are not
a range leave the price empty. A crossed-out amount above the selling price in the same price
block is the list price. Stock, the title without an <h1> and the photo come from shown.py.
Every refusal is recorded as a note.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass, field
from decimal import Decimal

from lxml import etree

from pipeline.platforms.extract.amounts import (
    AMOUNT,
    NOISE_WORDS,
    amounts,
    attribute_price,
    price_range,
    regular_beside_member,
    shown_text,
    taxed,
)
from pipeline.platforms.extract.document import heading, main_heading
from pipeline.platforms.extract.microdata import (
    SELL_WORDS,
    is_small,
    is_struck,
    label_parts,
)
from pipeline.platforms.extract.phrases import (
    ADD_TO_CART,
    PRICE_ON_REQUEST,
)
from pipeline.platforms.extract.shown import image_of, named_title, stock_of
from pipeline.platforms.prices import currency_of, parse_price, tidy_amounts

PRICE_WORDS = re.compile(
    r"price|pricing|cost|preis|prix|tarif|preci|prezz|prij|pre[cç]o|cen[ay]|pris|money|fiyat|hinta|pret|"
    r"harga|gi[aá]|kaina|cijena|hind|\u0446\u0435\u043d|価格|가격|판매가|售价|价格|السعر|מחיר",
    re.I,
)
NOT_PRICE_WORDS = NOISE_WORDS | {"range", "filter", "slider", "cart", "minicart", "currency"}
NOT_PRICE_WORDS |= {"tier", "tiers", "staffel", "staffelpreise", "bulk", "graduated"}  # per qty
# Class/id words (prefixes) of blocks that show other products or site chrome.
SKIP_WORDS = (
    "related", "recommend", "upsell", "crosssell", "similar", "recent", "carousel", "slider",
    "cookie", "newsletter", "review", "footer", "header", "menu", "breadcrumb", "sidebar",
    "wishlist", "minicart", "accessor", "miniature", "viewed", "bought",
)  # fmt: skip
SKIP_TAGS = ("script", "style", "noscript", "template", "nav", "footer", "header", "aside")
SKIP_TAGS += ("select", "option", "svg")
LISTING_PRICES = 3  # this many differently priced blocks: a category page, not one product
# More price-labelled blocks than this is a listing whatever they say (and reading each of a
# hostile page's 20,000 would take seconds).
MAX_PRICE_BLOCKS = 100
BARE_TAGS = ("p", "span", "div", "strong", "b", "dd", "td", "h2", "h3", "h4", "h5", "h6")


@dataclass
class Visible:
    title: str = ""
    image: str = ""
    price: Decimal | None = None
    list_price: Decimal | None = None
    currency: str = ""
    availability: str = "unknown"
    on_request: bool = False  # "Price on request": a product without a price on purpose
    notes: list[str] = field(default_factory=list)


def _label(el: etree._Element) -> str:
    return f"{el.get('class') or ''} {el.get('id') or ''} {el.get('data-hook') or ''}"


def _skipped(el: etree._Element) -> bool:
    label = _label(el).lower().replace("cross-sell", "crosssell").replace("up-sell", "upsell")
    label = label.replace("mini-cart", "minicart")
    parts = set(re.split(r"[\s_\-]+", label)) - {""}
    return "also" in parts or any(p.startswith(SKIP_WORDS) for p in parts)


def main_region(tree: etree._Element) -> etree._Element:
    """A copy of <body> without navigation, footers, scripts, options and related blocks.

    Whatever holds the product's own heading is kept, whatever its class says.
    """
    body = tree.find("body")
    region = copy.deepcopy(body if body is not None else tree)
    heading_el = main_heading(region)
    keep = [*heading_el.iterancestors(), heading_el] if heading_el is not None else []
    for el in list(region.iter()):
        if not isinstance(el.tag, str) or el.getparent() is None or el in keep:
            continue
        if el.tag.lower() in SKIP_TAGS or _skipped(el):
            el.drop_tree()
    return region


def price_blocks(region: etree._Element) -> list[etree._Element]:
    """Outermost elements labelled as a price, after the heading when there is one."""
    heading_el = main_heading(region)
    found, after = [], heading_el is None
    inside: set = set()  # found, for the ancestor test (a list's `in` made it quadratic)
    for el in region.iter():
        if not isinstance(el.tag, str):
            continue
        if el is heading_el:
            after = True
            continue
        label = f"{_label(el)} {el.get('itemprop') or ''}"
        if not after or not PRICE_WORDS.search(label) or label_parts(el) & NOT_PRICE_WORDS:
            continue
        if is_struck(el) or any(a in inside for a in el.iterancestors()):
            continue
        found.append(el)
        inside.add(el)
        if len(found) > MAX_PRICE_BLOCKS:  # a listing (read_visible): no need to find the rest
            break
    return found


def bare_price(region: etree._Element, country: str) -> tuple:
    """(price, currency) of the first element after the heading that shows only an amount with
    its currency ("14,90 €"), for pages whose price element has no telling class; none when
    a second, different bare amount sits right beside it (which one is the price?)."""
    heading_el = main_heading(region)
    after, seen = heading_el is None, []
    for el in region.iter():
        after = after or el is heading_el
        if not after or el.tag not in BARE_TAGS or len(el):
            continue
        text = tidy_amounts(" ".join(" ".join(el.itertext()).split()))
        currency = currency_of(text, country) if 1 < len(text) <= 25 else ""
        rest = AMOUNT.sub("", text, count=1).strip()
        if currency and len(amounts(text, currency)) == 1 and len(rest) <= 4:
            seen.append((el, parse_price(text, currency), currency))
            if len(seen) == 2:
                break
    if len(seen) == 2 and _near(seen[0][0], seen[1][0]) and seen[0][1] != seen[1][1]:
        return None, ""
    return seen[0][1:] if seen else (None, "")


def button_price(region: etree._Element, country: str) -> tuple:
    """(price, currency) written on the buy button ("Buy now £39.00"), when it shows one."""
    for el in region.xpath("//button | //input[@type='submit'] | //a"):
        words = f"{el.text_content()} {el.get('value') or ''}"
        if not ADD_TO_CART.search(f"{words} {_label(el)}"):
            continue
        currency = currency_of(words, country)
        found = amounts(words, currency) if currency else []
        if len(found) == 1:
            return found[0], currency
    return None, ""


def read_price(el: etree._Element, country: str, known_currency: str) -> tuple:
    """(price, currency, why-not) from one price block."""
    regular, currency = regular_beside_member(el, country)
    if regular is not None:
        return regular, currency, ""
    text = shown_text(el) or " ".join(" ".join(el.itertext()).split())
    if not text:
        return attribute_price(el, known_currency)
    currency = currency_of(text, country) or known_currency
    parent = el.getparent()
    if not currency and parent is not None and is_small(parent, 4):
        around = " ".join(" ".join(parent.itertext()).split())  # <span>€</span><span>12</span>
        currency = currency_of(around, country) if len(around) < 40 else ""
        text = around if currency else text
    if not currency:
        return None, "", f"no currency next to {text[:40]!r}"
    found = amounts(text, currency)
    if len(found) > 1:
        selling = _selling_amount(el, currency) or taxed(text, currency)
        selling = selling or price_range(text, currency)
        if selling is None:
            return None, currency, f"several amounts in {text[:60]!r}"
        return selling, currency, ""
    if not found:
        return None, currency, f"no amount in {text[:40]!r}"
    return parse_price(text, currency) or found[0], currency, ""


def _selling_amount(el: etree._Element, currency: str) -> Decimal | None:
    """In a block with two amounts, the one labelled as the selling price ("sale", "now")."""
    for child in el.iterdescendants():
        if isinstance(child.tag, str) and label_parts(child) & SELL_WORDS:
            found = amounts(shown_text(child), currency)
            if len(found) == 1:
                return found[0]
    return None


def _beside(el: etree._Element) -> list[etree._Element]:
    """Crossed-out siblings (up to 3 each side) of the price element or of its parent."""
    found = []
    for node in (el, el.getparent()):
        if node is None:
            continue
        near = [*itertools.islice(node.itersiblings(preceding=True), 3)]
        near += itertools.islice(node.itersiblings(), 3)
        for sib in near:
            if isinstance(sib.tag, str) and (is_struck(sib) or sib.xpath(".//del|.//s|.//strike")):
                found.append(sib)
    return found


def list_price_in(el: etree._Element, price: Decimal, currency: str) -> Decimal | None:
    """The one crossed-out ("was") amount above `price`, in or beside a block showing `price`."""
    text = shown_text(el)
    shown = amounts(text, currency) or (
        amounts(text, currency, loose=True) if len(text) < 20 else []
    )
    if price not in shown:
        return None
    texts = [shown_text(el, keep_struck=True)]
    texts += [" ".join(" ".join(sib.itertext()).split()) for sib in _beside(el)]
    struck = {
        a
        for text in texts
        for a in amounts(text, currency)
        if price < a < price * 20 and a not in shown
    }
    return struck.pop() if len(struck) == 1 else None


def _near(a: etree._Element, b: etree._Element) -> bool:
    """Side by side: siblings, or one a sibling of the other's parent."""
    pa, pb = a.getparent(), b.getparent()
    return (
        pa is pb
        or (pa is not None and pa.getparent() is pb)
        or (pb is not None and pb.getparent() is pa)
    )


def choose_price(blocks: list, country: str, known_currency: str, notes: list[str]) -> tuple:
    """(price, currency) of the first readable price block, unless the next readable one sits
    beside it with another amount and neither is labelled as the selling price (a shopper
    could not tell either: no price, and a note)."""
    read: list[tuple] = []
    for el in blocks:
        price, currency, why = read_price(el, country, known_currency)
        if price is None:
            notes.append(f"visible price skipped: {why}")
            continue
        read.append((el, price, currency))
        if len(read) == 2:
            break
    if not read:
        return None, ""
    if len(read) == 2 and _near(read[0][0], read[1][0]) and read[0][1] != read[1][1]:
        selling = [r for r in read if label_parts(r[0]) & SELL_WORDS]
        if len(selling) != 1:
            notes.append(f"visible price skipped: {read[0][1]} and {read[1][1]} side by side")
            return None, ""
        return selling[0][1], selling[0][2]
    return read[0][1], read[0][2]


def _on_request(blocks: list, region: etree._Element) -> bool:
    """ "Price on request" in a price block, or as a short line of its own."""
    for el in blocks:
        if PRICE_ON_REQUEST.search(" ".join(el.itertext())):
            return True
    for el in region.iter("p", "span", "div", "strong", "b"):
        text = " ".join(" ".join(el.itertext()).split()) if is_small(el) else ""
        if len(text) <= 40 and re.match(
            rf"^\W*(?:\w+\s*:\s*)?(?:{PRICE_ON_REQUEST.pattern})", text, re.I
        ):
            return True
    return False


def struck_beside_price(region: etree._Element, price: Decimal, currency: str) -> Decimal | None:
    """A crossed-out amount (<s>, <del>) above `price` whose parent also shows `price`:
    "<p><s>$59.00</s> <strong>$49.00</strong></p>" without any price class."""
    for struck in region.iter("s", "del", "strike"):
        parent = struck.getparent()
        if parent is None or not is_small(parent, 12):
            continue
        text = " ".join(" ".join(struck.itertext()).split())
        old = amounts(text, currency) or amounts(text, currency, loose=len(text) < 12)
        rest = shown_text(parent)
        if len(old) == 1 and price < old[0] < price * 20 and price in amounts(rest, currency):
            return old[0]
    return None


def _in_cards(blocks: list[etree._Element]) -> bool:
    """Price blocks in two sibling list items or cards, each linking elsewhere: product
    cards of a listing or search page (one <li> per product), not one product's prices."""
    items: dict[int, etree._Element] = {}
    for el in blocks:
        card = next((a for a in el.iterancestors("li", "article")), None)
        if card is not None and card.getparent() is not None and card.xpath(".//a[@href]"):
            items.setdefault(id(card), card)
    parents = [card.getparent() for card in items.values()]
    return any(parents.count(parent) >= 2 for parent in parents)


def read_visible(
    tree: etree._Element,
    region: etree._Element,
    page_url: str,
    country: str = "",
    known: tuple = (None, ""),
) -> Visible:
    """Title, price, list price and stock as shown; `known` is the markup's (price, currency).

    `region` is `main_region(tree)`. Empty fields carry a note saying why.
    """
    found = Visible(title=heading(tree) or named_title(region), image=image_of(region, page_url))
    blocks = price_blocks(region)
    listed: set = set()
    for el in blocks[:MAX_PRICE_BLOCKS]:  # enough to tell a listing; each costs a text walk
        listed.update(amounts(shown_text(el), known[1] or "EUR"))
        if len(listed) >= LISTING_PRICES:
            break
    many = len(blocks) > MAX_PRICE_BLOCKS
    if (
        many
        or (len(blocks) >= LISTING_PRICES and len(listed) >= LISTING_PRICES)
        or _in_cards(blocks)
    ):
        found.notes.append(f"visible price skipped: {len(blocks)} priced items (a listing?)")
        blocks = []
    found.price, found.currency = choose_price(blocks, country, known[1], found.notes)
    if found.price is None and not blocks and not found.notes:
        found.price, found.currency = bare_price(region, country)
    if found.price is None and not blocks and not found.notes:
        found.price, found.currency = button_price(region, country)
    price, currency = (
        (known[0], known[1]) if known[0] is not None else (found.price, found.currency)
    )
    for el in blocks if price is not None else []:
        if (listed := list_price_in(el, price, currency)) is not None:
            found.list_price = listed
            break
    if found.list_price is None and price is not None:
        found.list_price = struck_beside_price(region, price, currency)
    found.on_request = found.price is None and _on_request(blocks, region)
    found.availability = stock_of(region)
    if not found.title:
        found.notes.append("no <h1> heading for a visible title")
    return found
