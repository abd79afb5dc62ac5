"""Identifiers and brand printed as "label: value" on a page ("EAN: 4006381333931").

Read only for fields the markup left empty. A GTIN must pass its check digit; a SKU or brand
must be one short value right after its label in the same element (a table row, a definition
list entry, "Artikelnummer: NV-UM-BLA"), never a sentence.
"""

from __future__ import annotations

import re

from lxml import etree

from pipeline.platforms.extract.microdata import is_small, label_parts
from pipeline.platforms.identifiers import clean_identifier, normalize_gtin

LABELS = {
    "gtin": r"ean-?13|ean|gtin(?:-?1[234]|-?8)?|upc|isbn(?:-?1[03])?|barcode|jan|"
    r"c[oó]digo de barras|streepjescode|strekkode|streckkod",
    "sku": r"sku|artikelnummer|art\.?-?nr\.?|artikel-?nr\.?|référence|referencia|riferimento|"
    r"codice articolo|item (?:#|no\.?|number)|product code|produktnummer|varenummer|"
    r"tuotenumero|numer katalogowy|kod produktu|ref\.?|réf\.?|ürün kodu|stok kodu|상품코드|"
    r"c[oó]digo(?: do produto| del producto)?|品番|商品番号|상품번호|货号|"
    "\u0430\u0440\u0442\u0438\u043a\u0443\u043b|\u043a\u043e\u0434 \u0442\u043e\u0432\u0430\u0440[\u0430\u0443]|"
    r"k[oó]d(?: produktu| zboží)?",  # artikul, kod tovara
    "brand": r"brand|marke|marque|marca|merk|märke|varumärke|hersteller|fabricant|fabricante|"
    r"manufacturer|producent|ブランド|メーカー|브랜드|品牌",
}
_SUFFIX = r"(?:[\s-]*(?:code|nummer|number|no\.?|nr\.?))?"
# A GTIN's check digit makes a bare "EAN 400…" safe; a SKU or brand needs "label:" or a
# label element of its own ("Brand new design" is not a brand).
_STRICT = "[:#\uff1a]"
_SEPARATOR = {"gtin": "[:#.\uff1a]?"}
PATTERNS = {
    name: re.compile(
        rf"^\s*(?:{words}){_SUFFIX}\s*{_SEPARATOR.get(name, _STRICT)}\s*(\S.{{0,60}}?)\s*$",
        re.I,
    )
    for name, words in LABELS.items()
}
# "Réf. ML-SUSP-OPXL", "Ref. 40815": an abbreviated label whose dot is the separator; only a
# one-token code follows: with a digit, or capitals joined by hyphens ("Ref. to" is no SKU).
CODE_LIKE = re.compile(r"\d|^[A-Z]+(?:-[A-Z]+)+$")
DOTTED_SKU = re.compile(r"^\s*r[ée]f\.\s*([A-Za-z0-9][\w./-]{2,40})\s*$", re.I)
LABEL_ONLY = re.compile(rf"(?:{'|'.join(LABELS.values())}){_SUFFIX}", re.I)
MAX_TEXT = 80
BRAND_WORDS = {"brand", "manufacturer", "vendor"}
NOT_BRAND = {"navbar", "logo", "site", "header", "footer", "brands", "filter", "list"}


def _pairs(region: etree._Element) -> list[str]:
    """Short "label: value" texts: a label element and the element after it (th/td, dt/dd,
    <strong>SKU</strong><div>…</div>), and small blocks that hold both ("EAN: 400…")."""
    texts = []
    for el in region.iter("li", "p", "div", "span", "dd", "td"):
        if is_small(el):
            text = " ".join(" ".join(el.itertext()).split())
            if 2 < len(text) <= MAX_TEXT:
                texts.append(text)
    for el in region.iter("dt", "th", "td", "strong", "b", "label", "span"):
        label = " ".join(" ".join(el.itertext()).split()).rstrip(":\uff1a ")
        value = el.getnext()
        if value is None or not isinstance(value.tag, str) or not LABEL_ONLY.fullmatch(label):
            continue
        texts.append(f"{label}: {' '.join(' '.join(value.itertext()).split())}")
    return sorted(texts, key=len)  # the tightest holder first: a row before its table


def brand_holder(region: etree._Element) -> str:
    """A product's brand shown in an element labelled brand/manufacturer (text or logo alt)."""
    for el in region.iter():
        parts = label_parts(el) if isinstance(el.tag, str) else set()
        if not parts & BRAND_WORDS or parts & NOT_BRAND:
            continue
        text = " ".join(" ".join(el.itertext()).split())
        logos = el.xpath(".//img/@alt")
        value = text or (logos[0].strip() if logos else "")
        if value and len(value.split()) <= 4 and not PATTERNS["brand"].match(value):
            return value[:200]
    return ""


def read_facts(region: etree._Element, wanted: set[str]) -> dict[str, str]:
    """{"sku"|"gtin"|"brand": value} for the wanted fields found as label: value."""
    found: dict[str, str] = {}
    if "brand" in wanted and (brand := brand_holder(region)):
        found["brand"] = brand
    for text in _pairs(region):
        text = " ".join(text.split())
        for name in wanted - set(found):
            match = PATTERNS[name].match(text)
            if not match and name == "sku":
                match = DOTTED_SKU.match(text)
                match = match if match and CODE_LIKE.search(match.group(1)) else None
            if not match:
                continue
            value = match.group(1)
            if name == "gtin":
                value = normalize_gtin(value)
            elif name == "sku":
                value = clean_identifier(value) if " " not in value else ""
            elif len(value.split()) > 4:
                value = ""
            if value:
                found[name] = value
    return found
