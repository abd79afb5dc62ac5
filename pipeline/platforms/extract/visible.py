"""What a shopper reads on a page with little or no product markup: heading, price, stock.

Used only for fields the markup did not give. Precision first: a price is taken only from an
element whose class, id or itemprop says "price", that shows an amount with a currency (or the
markup's currency), after the page heading, outside navigation, footers and "related
products" blocks, with struck-through amounts removed; several different amounts that are not
a range leave the price empty. Stock comes from out-of-stock / in-stock phrases in a dozen
languages, then from an enabled add-to-cart button. Every refusal is recorded as a note.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from decimal import Decimal

from lxml import etree

from pipeline.platforms.extract.document import heading
from pipeline.platforms.extract.microdata import drop_struck, is_struck
from pipeline.platforms.prices import currency_of, parse_price

PRICE_LABEL = re.compile(r"price|preis|prix|precio|prezzo|prijs|preco|cena|pris|amount", re.I)
NOT_PRICE = re.compile(
    r"unit|per-|-per|per_|installment|saving|save|discount|tax|shipping|vat|total|"
    r"range|filter|slider|label|currency|cart|minicart",
    re.I,
)
SKIP_BLOCKS = re.compile(
    r"related|recommend|upsell|up-sell|cross-?sell|similar|recent|also|carousel|slider|"
    r"cookie|newsletter|review|footer|header|menu|breadcrumb|sidebar|wishlist|minicart|mini-cart",
    re.I,
)
SKIP_TAGS = [
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "footer",
    "header",
    "aside",
    "select",
    "option",
    "svg",
]
OUT_OF_STOCK = (
    "out of stock|sold out|currently unavailable|no longer available|not available|"
    "ausverkauft|nicht vorrätig|nicht auf lager|derzeit nicht verfügbar|nicht lieferbar|"
    "agotado|sin stock|sin existencias|no disponible|épuisé|en rupture de stock|rupture de stock|"
    "indisponible|esaurito|non disponibile|non disponible|niet op voorraad|uitverkocht|"
    "niet leverbaar|esgotado|indisponível|sem estoque|fora de estoque|brak w magazynie|"
    "niedostępny|wyprzedany|slutsåld|slut i lager|ej i lager|udsolgt|ikke på lager|utsolgt|"
    "loppuunmyyty|nincs készleten|vyprodáno|není skladem|stokta yok|tükendi|нет в наличии|"
    "распродано|在庫切れ|在庫なし|売り切れ|품절|재고 없음|缺货|售罄|已售完|hết hàng"
)
IN_STOCK = (
    "in stock|available now|auf lager|sofort lieferbar|vorrätig|en stock|disponible|"
    "in magazzino|disponibile|op voorraad|em estoque|disponível|w magazynie|dostępny|i lager|"
    "på lager|varastossa|skladem|készleten|stokta|в наличии|在庫あり|재고 있음|有货|còn hàng"
)
ADD_TO_CART = re.compile(
    r"add to (?:cart|bag|basket)|buy now|in den warenkorb|jetzt kaufen|ajouter au panier|"
    r"añadir al carrito|agregar al carrito|aggiungi al carrello|in winkelwagen|"
    r"adicionar ao carrinho|dodaj do koszyka|lägg i varukorgen?|læg i kurv|legg i handlekurv|"
    r"kosáriba|do košíku|sepete ekle|в корзину|カートに入れる|장바구니|加入购物车|add-to-cart",
    re.I,
)
AMOUNT = re.compile(r"\d[\d.,\u00a0\u202f ']*\d|\d")
RANGE = re.compile(r"\d\s*(?:\u2013|\u2014|-|~|to|bis|à|a|tot)\s*\D{0,4}\d", re.I)


@dataclass
class Visible:
    title: str = ""
    price: Decimal | None = None
    currency: str = ""
    availability: str = "unknown"
    notes: list[str] = field(default_factory=list)


def _label(el: etree._Element) -> str:
    return f"{el.get('class') or ''} {el.get('id') or ''} {el.get('itemprop') or ''}"


def main_region(tree: etree._Element) -> etree._Element:
    """A copy of <body> without navigation, footers, scripts, options and related blocks."""
    body = tree.find("body")
    region = copy.deepcopy(body if body is not None else tree)
    for el in list(region.iter()):
        if not isinstance(el.tag, str) or el.getparent() is None:
            continue
        if el.tag.lower() in SKIP_TAGS or SKIP_BLOCKS.search(_label(el)):
            el.drop_tree()
    return region


def _price_elements(region: etree._Element) -> list[etree._Element]:
    """Outermost elements labelled as a price, after the heading when there is one."""
    found, after = [], not region.xpath("//h1")
    for el in region.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag.lower() == "h1":
            after = True
            continue
        label = _label(el)
        if not after or not PRICE_LABEL.search(label) or NOT_PRICE.search(label):
            continue
        if is_struck(el) or any(is_struck(a) or a in found for a in el.iterancestors()):
            continue
        found.append(el)
    return found


def _amounts(text: str, currency: str) -> list[Decimal]:
    values = [parse_price(m.group(0), currency) for m in AMOUNT.finditer(text)]
    return list(dict.fromkeys(v for v in values if v is not None))


def read_price(el: etree._Element, country: str, known_currency: str) -> tuple:
    """(price, currency, why-not) from one price element."""
    el = copy.deepcopy(el)
    drop_struck(el)
    text = " ".join(el.text_content().split())
    currency = currency_of(text, country) or (el.get("content") and known_currency) or ""
    currency = currency or (known_currency if AMOUNT.search(text) else "")
    if not currency:
        return None, "", f"no currency next to {text[:40]!r}"
    amounts = _amounts(text, currency)
    if len(amounts) > 1 and not RANGE.search(text):
        return None, currency, f"several amounts in {text[:60]!r}"
    if not amounts:
        return None, currency, f"no amount in {text[:40]!r}"
    return parse_price(text, currency) or amounts[0], currency, ""


def _stock(region: etree._Element) -> str:
    text = " ".join(region.text_content().split()).lower()
    if re.search(rf"(?<!\w)(?:{OUT_OF_STOCK})(?!\w)", text):
        return "out_of_stock"
    if re.search(rf"(?<!\w)(?:{IN_STOCK})(?!\w)", text):
        return "in_stock"
    for el in region.xpath("//button | //input[@type='submit'] | //a"):
        words = f"{el.text_content()} {el.get('value') or ''} {_label(el)} {el.get('name') or ''}"
        if ADD_TO_CART.search(words):
            disabled = el.get("disabled") is not None or "disabled" in _label(el).lower()
            return "out_of_stock" if disabled else "in_stock"
    return "unknown"


def read_visible(tree: etree._Element, country: str = "", known_currency: str = "") -> Visible:
    """Title, price and stock as shown; empty fields carry a note saying why."""
    found = Visible(title=heading(tree))
    region = main_region(tree)
    for el in _price_elements(region):
        price, currency, why = read_price(el, country, known_currency)
        if price is not None:
            found.price, found.currency = price, currency
            break
        found.notes.append(f"visible price skipped: {why}")
    found.availability = _stock(region)
    if not found.title:
        found.notes.append("no <h1> heading for a visible title")
    return found
