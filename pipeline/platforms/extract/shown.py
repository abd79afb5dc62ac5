"""Stock, title and photo as a shopper sees them on a page (used by visible.py).

Stock comes from stock classes ("stock available"), then strong phrases anywhere in the
product area, then pre-order phrases, in-stock phrases, short weak stock lines ("Availability:
not available"), then an enabled or disabled add-to-cart button; options and <label>s (one
sold-out size) are left out. Without an <h1>, the title is a short element labelled name/title;
the photo is the first <img> labelled main/product/gallery, else the first real photo.
"""

from __future__ import annotations

import copy
import re

from lxml import etree

from pipeline.platforms.base import absolute_url
from pipeline.platforms.extract.microdata import NOT_PHOTO, PLACEHOLDER, is_small, label_parts
from pipeline.platforms.extract.phrases import (
    ADD_TO_CART,
    IN_STOCK,
    IN_STOCK_LINE,
    OUT_OF_STOCK,
    OUT_OF_STOCK_LINE,
    PREORDER,
)

PRICE_LABEL = re.compile(r"price|preis|prix|precio|prezzo|pris|cena|fiyat", re.I)
PHOTO = re.compile(r"product|main|gallery|featured|zoom|cover|primary|photo|hero|image", re.I)
LINE_TAGS = ("p", "span", "div", "strong", "b", "dd", "td", "li", "em", "small")
SHORT_TEXT = 80
# Stock classes: Magento "stock available|unavailable", WooCommerce "stock in-stock|out-of-stock".
STOCK_OUT_CLASS = re.compile(r"out[-_]?of[-_]?stock|sold[-_]?out|unavailable|not[-_]available")
STOCK_IN_CLASS = re.compile(r"(?<![a-z])(?:in[-_]?stock|available)(?![a-z])")


PICKER_WORDS = {"swatch", "swatches", "variant", "variants", "option", "options", "size"}
PICKER_WORDS |= {"sizes", "picker", "selector", "colour", "color", "colors", "colours"}


def _label(el: etree._Element) -> str:
    return f"{el.get('class') or ''} {el.get('id') or ''} {el.get('data-hook') or ''}"


def _stock_lines(region: etree._Element) -> str:
    """In/out of stock from a short line that is only a (weak) stock phrase."""
    for el in region.iter(*LINE_TAGS):
        if not is_small(el):
            continue
        text = " ".join(" ".join(el.itertext()).split())
        if len(text) > 40:
            continue
        if OUT_OF_STOCK_LINE.match(text):
            return "out_of_stock"
        if IN_STOCK_LINE.match(text):
            return "in_stock"
    return "unknown"


def _short_texts(region: etree._Element) -> list[str]:
    """Texts short enough to be a stock line or badge: small elements' and single text nodes.
    A description paragraph ("our bestseller sold out twice last year") is not one."""
    texts = []
    for el in region.iter():
        if isinstance(el.tag, str) and is_small(el):
            text = " ".join(" ".join(el.itertext()).split())
            if text and len(text) <= SHORT_TEXT:
                texts.append(text)
    for piece in region.itertext():
        text = " ".join(piece.split())
        if text and len(text) <= SHORT_TEXT:
            texts.append(text)
    return texts


def stock_of(region: etree._Element) -> str:
    """In/out of stock from stock classes, phrases, then the add-to-cart button."""
    for el in region.iter():
        parts = label_parts(el) if isinstance(el.tag, str) else set()
        if "stock" in parts or "availability" in parts:
            label = _label(el).lower()
            if STOCK_OUT_CLASS.search(label):
                return "out_of_stock"
            if STOCK_IN_CLASS.search(label):
                return "in_stock"
    unlabelled = copy.deepcopy(region)  # "Green, sold out" on one option is not the product
    for label in list(unlabelled.iter("label")):
        label.drop_tree()
    text = " | ".join(_short_texts(unlabelled)).lower()
    if OUT_OF_STOCK.search(text):
        return "out_of_stock"
    if PREORDER.search(text):
        return "preorder"
    if IN_STOCK.search(text):
        return "in_stock"
    if (state := _stock_lines(unlabelled)) != "unknown":
        return state
    buttons = _buy_buttons(region)
    return ("in_stock" if buttons[0] else "out_of_stock") if buttons else "unknown"


def _buy_buttons(region: etree._Element) -> list[bool]:
    """Whether each add-to-cart button of the product area is enabled."""
    found = []
    for el in region.xpath("//button | //input[@type='submit'] | //a | //div[@role='button']"):
        words = f"{el.text_content()} {el.get('value') or ''} {_label(el)} {el.get('name') or ''}"
        if ADD_TO_CART.search(words):
            found.append(not (el.get("disabled") is not None or "disabled" in _label(el).lower()))
    return found


def _pickers(region: etree._Element) -> bool:
    """Whether the product area offers sizes or colours to choose (the stock words may be one
    option's): radio inputs or elements labelled swatch/variant/option/size/picker."""
    if region.xpath(".//input[@type='radio']"):
        return True
    return any(label_parts(el) & PICKER_WORDS for el in region.iter() if isinstance(el.tag, str))


def shown_instead(region: etree._Element) -> str:
    """ "out_of_stock" or "preorder" when the page says the whole product cannot be bought
    now: a strong out-of-stock (or a pre-order) phrase, no phrase of the other states and no
    enabled add-to-cart button (one sold-out size leaves a button); else ""."""
    unlabelled = copy.deepcopy(region)
    for label in list(unlabelled.iter("label")):
        label.drop_tree()
    text = " | ".join(_short_texts(unlabelled)).lower()
    out, pre = bool(OUT_OF_STOCK.search(text)), bool(PREORDER.search(text))
    if out == pre or IN_STOCK.search(text) or any(_buy_buttons(region)) or _pickers(region):
        return ""
    return "out_of_stock" if out else "preorder"


def named_title(region: etree._Element) -> str:
    """Without an <h1>: the first short heading-like element labelled "name" or "title"."""
    for el in region.iter("h2", "h3", "h4", "div", "p", "span", "strong"):
        if label_parts(el) & {"name", "title"} and not el.xpath(".//div|.//p|.//table"):
            text = " ".join(" ".join(el.itertext()).split())
            if 3 <= len(text) <= 200 and not PRICE_LABEL.search(_label(el)):
                return text
    return ""


def image_of(region: etree._Element, page_url: str) -> str:
    """The product photo: the first <img> labelled main/product/gallery, else the first photo."""
    photos: list[tuple[bool, str]] = []
    for img in region.iter("img"):
        src = img.get("src") or ""
        if not src.strip() or PLACEHOLDER.search(src):
            src = img.get("data-src") or img.get("data-original") or img.get("data-lazy-src") or ""
        if not src.strip():
            src = (img.get("srcset") or img.get("data-srcset") or "").split(" ")[0]
        url = absolute_url(src, page_url)
        words = f"{_label(img)} {img.get('alt') or ''} {url.rsplit('/', 1)[-1]}".lower()
        sizes = (img.get("width") or "", img.get("height") or "")
        small = any(v.isdigit() and int(v) < 100 for v in sizes)
        if not url or small or NOT_PHOTO.search(words) or url.lower().endswith((".svg", ".gif")):
            continue
        holders = [_label(img), *(_label(a) for a in list(img.iterancestors())[:3])]
        photos.append((bool(PHOTO.search(" ".join(holders))), url))
    return next((u for liked, u in photos if liked), photos[0][1] if photos else "")
