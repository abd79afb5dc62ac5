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

from pipeline.platforms.extract.document import heading, main_heading
from pipeline.platforms.extract.microdata import (
    SELL_WORDS,
    drop_struck,
    is_small,
    is_struck,
    label_parts,
)
from pipeline.platforms.extract.phrases import (
    ADD_TO_CART,
    EXCL_TAX,
    INCL_TAX,
    INSTALMENTS,
    MEMBER_PRICE,
    NOT_THE_PRICE,
    PRICE_ON_REQUEST,
    WAS_PRICE,
)
from pipeline.platforms.extract.shown import image_of, named_title, stock_of
from pipeline.platforms.prices import currency_of, normalize_currency, parse_price, tidy_amounts

PRICE_WORDS = re.compile(
    r"price|pricing|cost|preis|prix|tarif|preci|prezz|prij|pre[cç]o|cen[ay]|pris|money|fiyat|hinta|pret|"
    r"harga|gi[aá]|kaina|cijena|hind|\u0446\u0435\u043d|価格|가격|판매가|售价|价格|السعر|מחיר",
    re.I,
)
NOISE_WORDS = {"unit", "per", "installment", "installments", "saving", "savings", "save"}
NOISE_WORDS |= {"discount", "percentage", "percent", "label", "badge", "shipping", "total"}
NOISE_WORDS |= {"excluded", "excl", "exclusive", "pretax", "omnibus", "lowest", "delivery"}
NOISE_WORDS |= {"postage", "freight", "reference", "parcelas", "parcela", "cuotas", "raten"}
# "Discount" in the shops' languages: a "-30%" badge, not a price.
NOISE_WORDS |= {"sconto", "rabatt", "remise", "descuento", "desconto", "korting", "rabat"}
NOISE_WORDS |= {"indirim", "alennus", "sleva", "reduction", "savings"}
NOISE_WORDS |= {"bez", "netto", "exvat", "exclvat", "excluding", "exkl"}  # prices before tax
NOISE_WORDS |= {"member", "members", "club", "loyalty", "klubb", "medlem"}  # members only
NOT_PRICE_WORDS = NOISE_WORDS | {"range", "filter", "slider", "cart", "minicart", "currency"}
# Class/id words (prefixes) of blocks that show other products or site chrome.
SKIP_WORDS = (
    "related", "recommend", "upsell", "crosssell", "similar", "recent", "carousel", "slider",
    "cookie", "newsletter", "review", "footer", "header", "menu", "breadcrumb", "sidebar",
    "wishlist", "minicart", "accessor", "miniature", "viewed", "bought",
)  # fmt: skip
SKIP_TAGS = ("script", "style", "noscript", "template", "nav", "footer", "header", "aside")
SKIP_TAGS += ("select", "option", "svg")
CURRENCY_SIGNS = re.compile(
    r"[€$£¥₩₹₽₺₪฿₫₴₱]|\b[A-Z]{3}\b|zł|kr|Kč|Ft|TL|\u043b\u0432|\u0440\u0443\u0431|원|円|元"
)
# Spaces only as thousands separators ("1 299,00"), so "1-9 4,90 €" stays three numbers.
AMOUNT = re.compile(r"\d{1,3}(?:[ \u00a0\u202f'\u2019]\d{3})+(?:[.,]\d+)?|\d[\d.,]*\d|\d")
RANGE_JOIN = re.compile(
    r"\s*[^\w\s]{0,4}\s*(?:\u2013|\u2014|-|~|to|bis|à|a|tot)\s*[^\w\s]{0,4}\s*", re.I
)
LISTING_PRICES = 3  # this many differently priced blocks: a category page, not one product
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
    for el in region.iter():
        if not isinstance(el.tag, str):
            continue
        if el is heading_el:
            after = True
            continue
        label = f"{_label(el)} {el.get('itemprop') or ''}"
        if not after or not PRICE_WORDS.search(label) or label_parts(el) & NOT_PRICE_WORDS:
            continue
        if is_struck(el) or any(a in found for a in el.iterancestors()):
            continue
        found.append(el)
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


def _priced(text: str, currency: str, loose: bool = False) -> list[tuple[re.Match, Decimal]]:
    """Amounts written with a currency next to them ("30 dni" is not a price), with their
    place in the text; `loose` takes bare numbers too (an element holding just "19 990")."""
    found = []
    for match in AMOUNT.finditer(text):
        window = f"{text[max(0, match.start() - 5) : match.start()]} {text[match.end() : match.end() + 5]}"
        if text[match.end() : match.end() + 2].strip().startswith("%"):
            continue  # "18% OFF", "-20 %": a discount
        if loose or currency_of(window) or _sign(window):
            value = parse_price(match.group(0), currency)
            if value is not None:
                found.append((match, value))
    return found


def _sign(window: str) -> bool:
    """A currency sign or an ISO code ("MRP", "OFF" and "VAT" are not currencies)."""
    signs = CURRENCY_SIGNS.findall(window)
    return any(not re.fullmatch(r"[A-Z]{3}", s) or normalize_currency(s) for s in signs)


def amounts(text: str, currency: str, loose: bool = False) -> list[Decimal]:
    """The distinct amounts of `_priced`, in order."""
    return list(dict.fromkeys(v for _, v in _priced(text, currency, loose)))


def price_range(text: str, currency: str) -> Decimal | None:
    """The low end of "€12 - €19" / "12 bis 19 €": two priced amounts joined by a range
    word and nothing else (a quantity table's "1-9  4,90 €" is not a range)."""
    found = _priced(text, currency)
    if len({v for _, v in found}) != 2 or len(found) != 2:
        return None
    (first, low), (second, high) = found
    between = text[first.end() : second.start()]
    return min(low, high) if RANGE_JOIN.fullmatch(between) else None


def shown_text(el: etree._Element, keep_struck: bool = False) -> str:
    """The element's text without savings, unit prices and labels, and (unless `keep_struck`)
    without crossed-out prices."""
    el = copy.deepcopy(el)
    for sup in el.iter("sup"):  # "$24<sup>99</sup>": superscript cents
        if re.fullmatch(r"\s*\d{2}\s*", sup.text or "") and not len(sup):
            sup.text = "." + sup.text.strip()
    if not keep_struck:
        drop_struck(el)
    for child in [c for c in el.iterdescendants() if label_parts(c) & NOISE_WORDS]:
        holds_struck = is_struck(child) or any(is_struck(d) for d in child.iterdescendants())
        if child.getparent() is not None and not (keep_struck and holds_struck):
            child.drop_tree()
    text = tidy_amounts(" ".join(" ".join(el.itertext()).split()))
    text = NOT_THE_PRICE.sub(" ", INSTALMENTS.sub(" ", MEMBER_PRICE.sub(" ", text)))
    return text if keep_struck else EXCL_TAX.sub(" ", WAS_PRICE.sub(" ", text))


def read_price(el: etree._Element, country: str, known_currency: str) -> tuple:
    """(price, currency, why-not) from one price block."""
    text = shown_text(el) or " ".join(" ".join(el.itertext()).split())
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
        selling = _selling_amount(el, currency) or _taxed(text, currency)
        selling = selling or price_range(text, currency)
        if selling is None:
            return None, currency, f"several amounts in {text[:60]!r}"
        return selling, currency, ""
    if not found:
        return None, currency, f"no amount in {text[:40]!r}"
    return parse_price(text, currency) or found[0], currency, ""


def _taxed(text: str, currency: str) -> Decimal | None:
    """Of several amounts, the one said to include tax ("12,000円 (税込 13,200円)")."""
    found = {v for m in INCL_TAX.finditer(text) for v in amounts(m.group(0), currency, True)}
    return found.pop() if len(found) == 1 else None


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
    listed = {a for el in blocks for a in amounts(shown_text(el), known[1] or "EUR")}
    if len(blocks) >= LISTING_PRICES and len(listed) >= LISTING_PRICES:
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
