"""Amounts as a shopper reads them in a price block: which numbers are prices (a currency
beside them, not a percentage), which text counts (no savings, unit prices, instalments,
member prices, crossed-out or before-tax amounts), ranges, and the tax-included amount of a
pair. Used by visible.py (price blocks) and tax.py (net prices)."""

from __future__ import annotations

import copy
import re
from decimal import Decimal

from lxml import etree

from pipeline.platforms.extract.microdata import drop_struck, is_struck, label_parts
from pipeline.platforms.extract.phrases import (
    EXCL_TAX,
    EXCL_TAX_LABEL,
    INCL_TAX,
    INSTALMENTS,
    MEMBER_PRICE,
    NOT_THE_PRICE,
    WAS_PRICE,
)
from pipeline.platforms.prices import currency_of, normalize_currency, parse_price, tidy_amounts

NOISE_WORDS = {"unit", "per", "installment", "installments", "saving", "savings", "save"}
NOISE_WORDS |= {"discount", "percentage", "percent", "label", "badge", "shipping", "total"}
NOISE_WORDS |= {"excluded", "excl", "exclusive", "pretax", "omnibus", "lowest", "delivery"}
NOISE_WORDS |= {"postage", "freight", "reference", "parcelas", "parcela", "cuotas", "raten"}
# "Discount" in the shops' languages: a "-30%" badge, not a price.
NOISE_WORDS |= {"sconto", "rabatt", "remise", "descuento", "desconto", "korting", "rabat"}
NOISE_WORDS |= {"indirim", "alennus", "sleva", "reduction", "savings"}
NOISE_WORDS |= {"bez", "netto", "exvat", "exclvat", "excluding", "exkl"}  # prices before tax
NOISE_WORDS |= {"member", "members", "club", "loyalty", "klubb", "medlem"}  # members only
CURRENCY_SIGNS = re.compile(
    r"[€$£¥₩₹₽₺₪฿₫₴₱]|\b[A-Z]{3}\b|zł|kr|Kč|Ft|TL|\u043b\u0432|\u0440\u0443\u0431|원|円|元"
)
# Spaces only as thousands separators ("1 299,00"), so "1-9 4,90 €" stays three numbers.
AMOUNT = re.compile(r"\d{1,3}(?:[ \u00a0\u202f'\u2019]\d{3})+(?:[.,]\d+)?|\d[\d.,]*\d|\d")
RANGE_JOIN = re.compile(
    r"\s*[^\w\s]{0,4}\s*(?:\u2013|\u2014|-|~|to|bis|à|a|tot)\s*[^\w\s]{0,4}\s*", re.I
)


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


# The longest text read as a price display. Real ones ("Ab 1.299,00 € inkl. MwSt. zzgl.
# Versand", a sale and a list price with their labels) stay well under it; the amount and tax
# phrase patterns backtrack over runs of digits and separators, so a hostile page's 20,000
# digits in a price element cost minutes, not milliseconds, without this bound.
MAX_SHOWN = 300


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
    if len(" ".join("".join(el.itertext()).split())) > MAX_SHOWN:
        return ""  # no price display is this long; the phrase patterns would cost O(n²) on it
    el = copy.deepcopy(el)
    for sup in el.iter("sup"):  # "$24<sup>99</sup>": superscript cents
        if re.fullmatch(r"\s*\d{2}\s*", sup.text or "") and not len(sup):
            sup.text = "." + sup.text.strip()
    if not keep_struck:
        drop_struck(el)
    for child in [c for c in el.iterdescendants() if label_parts(c) & NOISE_WORDS]:
        if EXCL_TAX_LABEL.match(" ".join(child.itertext())):
            continue  # "12,50 € <span class='label'>zzgl. MwSt.</span>": says the amount is net
        holds_struck = is_struck(child) or any(is_struck(d) for d in child.iterdescendants())
        if child.getparent() is not None and not (keep_struck and holds_struck):
            child.drop_tree()
    text = tidy_amounts(" ".join(" ".join(el.itertext()).split()))
    text = NOT_THE_PRICE.sub(" ", INSTALMENTS.sub(" ", MEMBER_PRICE.sub(" ", text)))
    return text if keep_struck else EXCL_TAX.sub(" ", WAS_PRICE.sub(" ", text))


def taxed(text: str, currency: str) -> Decimal | None:
    """Of several amounts, the one said to include tax ("12,000円 (税込 13,200円)")."""
    if len(text) > MAX_SHOWN:
        return None
    found = {v for m in INCL_TAX.finditer(text) for v in amounts(m.group(0), currency, True)}
    return found.pop() if len(found) == 1 else None


DECIMAL_ATTRIBUTE = re.compile(r"\s*\d{1,9}\.\d{2}\s*")
PRICE_ATTRIBUTES = ("data-price", "data-price-amount", "data-amount", "data-value")
CURRENCY_ATTRIBUTES = ("data-currency", "data-currency-code", "data-price-currency")


def attribute_price(el: etree._Element, known_currency: str) -> tuple:
    """(price, currency, why-not) of an empty price element a script fills in from its
    attributes (`data-price="34.90" data-currency="EUR"`). Only a decimal with two places:
    a whole number may be cents (`data-price="3490"`), and then it is no price."""
    raw = next((el.get(a) for a in PRICE_ATTRIBUTES if el.get(a)), "")
    code = next((el.get(a) for a in CURRENCY_ATTRIBUTES if el.get(a)), "")
    currency = normalize_currency(code) or known_currency
    if not raw or not DECIMAL_ATTRIBUTE.fullmatch(raw):
        return None, currency, "an empty price element"
    if not currency:
        return None, "", f"no currency beside data price {raw!r}"
    return parse_price(raw.strip(), currency), currency, ""


def regular_beside_member(el: etree._Element, country: str) -> tuple[Decimal | None, str]:
    """(price, currency) of a block pairing a members-only price with the regular one
    ("Klubbpris 399 kr · Ordinarie pris 499 kr"): the regular price is what everyone pays,
    though its label reads like a "was" price. None unless it is the one amount left once the
    member price is gone, and nothing in the block is crossed out (a real sale)."""
    raw = " ".join(" ".join(el.itertext()).split())
    if not MEMBER_PRICE.search(raw) or el.xpath(".//s|.//del|.//strike"):
        return None, ""
    rest = shown_text(el, keep_struck=True)
    currency = currency_of(rest, country)
    found = amounts(rest, currency) if currency else []
    return (found[0], currency) if len(found) == 1 else (None, "")
