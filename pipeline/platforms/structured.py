"""Product data from an HTML page: schema.org JSON-LD first, then microdata, then OpenGraph.

Each JSON-LD block is parsed on its own (a broken block next to a good one loses nothing, unlike
extruct's all-or-nothing JSON-LD extractor), with a cleanup retry for comments, CDATA and
trailing semicolons. `@graph`, top-level lists, `@type` lists, ProductGroup/hasVariant,
AggregateOffer and WooCommerce's priceSpecification are understood. Relative and
protocol-relative URLs are resolved against the page.
"""

from __future__ import annotations

import json
import logging
import re

import lxml.html
from lxml import etree

from pipeline.platforms.base import (
    ProductData,
    absolute_url,
    normalize_availability,
    normalize_currency,
    parse_price,
    plain_text,
    unique,
)

logger = logging.getLogger(__name__)
_AVAIL_RANK = {"in_stock": 0, "preorder": 1, "out_of_stock": 2, "unknown": 3}


def decode_html(body: bytes, content_type: str = "") -> str:
    """The page as text, decoded as browsers do: HTTP charset, BOM, <meta charset>, detection."""
    from w3lib.encoding import html_to_unicode

    _, text = html_to_unicode(content_type or None, body)
    return text


def parse_html(body: bytes, content_type: str = "") -> etree._Element | None:
    text = decode_html(body, content_type).replace("\x00", "")
    if not text.strip():
        return None
    try:
        return lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError):
        return None


def canonical_url(tree: etree._Element | None, page_url: str) -> str:
    if tree is not None:
        for href in tree.xpath('//link[@rel="canonical"]/@href'):
            if url := absolute_url(href, page_url):
                return url.split("#")[0]
    return page_url.split("#")[0]


def json_ld_blocks(tree: etree._Element) -> tuple[list[object], int]:
    """Parsed JSON-LD blocks and how many were unreadable."""
    blocks, bad = [], 0
    scripts = tree.xpath('//script[contains(translate(@type, "LDJSON", "ldjson"), "ld+json")]')
    for script in scripts:
        text = script.text or ""
        data = _loads(text)
        if data is None:
            bad += 1
            logger.debug("unreadable JSON-LD block: %.80r", text)
            continue
        blocks.append(data)
    return blocks, bad


def _loads(text: str) -> object | None:
    for candidate in (text, _cleanup(text)):
        try:
            return json.loads(candidate, strict=False)
        except (ValueError, RecursionError):
            continue
    return None


def _cleanup(text: str) -> str:
    text = re.sub(r"^\s*(<!--|<!\[CDATA\[|//[^\n]*\n)+", "", text)
    text = re.sub(r"(?:\s*(?:-->|\]\]>|;))+\s*$", "", text.strip())
    return re.sub(r",\s*([}\]])", r"\1", text)  # trailing commas


def _nodes(data: object, depth: int = 0):
    if depth > 6:
        return
    if isinstance(data, list):
        for item in data:
            yield from _nodes(item, depth + 1)
    elif isinstance(data, dict):
        yield data
        if isinstance(data.get("@graph"), list):
            yield from _nodes(data["@graph"], depth + 1)


def _types(node: dict) -> set[str]:
    raw = node.get("@type", [])
    raw = raw if isinstance(raw, list) else [raw]
    return {str(t).rsplit("/", 1)[-1].rsplit(":", 1)[-1].lower() for t in raw}


def _text(value: object) -> str:
    if isinstance(value, dict):
        value = value.get("name") or value.get("@value") or ""
    if isinstance(value, list):
        value = next((_text(v) for v in value if _text(v)), "")
    return (
        plain_text(value, 300)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool)
        else ""
    )


def _images(value: object, base: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    urls = []
    for item in items[:20]:
        if isinstance(item, dict):
            item = item.get("contentUrl") or item.get("url") or ""
        if isinstance(item, list):
            item = item[0] if item else ""
        urls.append(absolute_url(item, base))
    return unique(urls)


def _offer_values(offer: dict) -> tuple[object, object, object]:
    """(price, currency, availability) of one Offer/AggregateOffer/priceSpecification."""
    price = offer.get("price", offer.get("lowPrice"))
    currency = offer.get("priceCurrency")
    specs = offer.get("priceSpecification")
    specs = specs if isinstance(specs, list) else [specs] if isinstance(specs, dict) else []
    if price in (None, "") and specs:
        # WooCommerce lists the sale price first; a ListPrice entry is the crossed-out one.
        regular = [
            s
            for s in specs
            if isinstance(s, dict) and "ListPrice" not in str(s.get("priceType", ""))
        ]
        spec = (regular or specs)[0]
        if isinstance(spec, dict):
            price, currency = spec.get("price"), currency or spec.get("priceCurrency")
    return price, currency, offer.get("availability")


def _offers(node: dict) -> list[tuple[object, object, object]]:
    offers = node.get("offers")
    offers = offers if isinstance(offers, list) else [offers] if isinstance(offers, dict) else []
    found = [_offer_values(o) for o in offers if isinstance(o, dict)]
    for variant in node.get("hasVariant") or []:
        if isinstance(variant, dict):
            found += _offers(variant)
    return found


def product_from_node(node: dict, page_url: str, external_id: str) -> ProductData:
    offers = _offers(node)
    parsed = [
        (parse_price(p), normalize_currency(c), normalize_availability(a)) for p, c, a in offers
    ]
    availability = min((a for _, _, a in parsed), key=_AVAIL_RANK.get, default="unknown")
    priced = [x for x in parsed if x[0] is not None]
    buyable = [x for x in priced if x[2] == "in_stock"] or priced
    price, currency = (min(buyable)[:2]) if buyable else (None, "")
    if not currency:
        currency = next((c for _, c, _ in parsed if c), "")
    category = node.get("category")
    if isinstance(category, list):
        category = " > ".join(_text(c) for c in category if _text(c))
    return ProductData(
        external_id=external_id,
        url=absolute_url(node.get("url"), page_url) or page_url,
        title=_text(node.get("name")),
        description=plain_text(node.get("description")),
        brand=_text(node.get("brand")),
        category=_text(category),
        tags=[],
        price=price,
        currency=currency,
        availability=availability,
        image_urls=_images(node.get("image"), page_url),
    )


def _from_json_ld(tree, page_url: str, external_id: str) -> tuple[list[ProductData], int]:
    blocks, bad = json_ld_blocks(tree)
    products = []
    for block in blocks:
        for node in _nodes(block):
            types = _types(node)
            if "productgroup" in types or ("product" in types and not node.get("isVariantOf")):
                products.append(product_from_node(node, page_url, external_id))
    return products, bad


def _from_microdata(tree, page_url: str, external_id: str) -> list[ProductData]:
    try:
        from extruct.w3cmicrodata import MicrodataExtractor

        items = MicrodataExtractor().extract_items(tree, base_url=page_url)
    except Exception:
        logger.debug("microdata extraction failed on %s", page_url, exc_info=True)
        return []
    products = []
    for item in items:
        if "product" in str(item.get("type", "")).lower():
            props = dict(item.get("properties", {}))
            offers = props.get("offers")
            if isinstance(offers, dict) and "properties" in offers:
                props["offers"] = offers["properties"]
            brand = props.get("brand")
            if isinstance(brand, dict) and "properties" in brand:
                props["brand"] = brand["properties"]
            products.append(product_from_node(props, page_url, external_id))
    return products


def _from_opengraph(tree, page_url: str, external_id: str) -> list[ProductData]:
    meta: dict[str, str] = {}
    for el in tree.xpath("//meta[@property or @name]"):
        key = (el.get("property") or el.get("name") or "").strip().lower()
        if key and key not in meta:
            meta[key] = el.get("content") or ""
    price = meta.get("product:price:amount") or meta.get("og:price:amount")
    if meta.get("og:type", "").lower() != "product" and not price:
        return []
    currency = meta.get("product:price:currency") or meta.get("og:price:currency")
    node = {
        "name": meta.get("og:title"),
        "description": meta.get("og:description"),
        "url": meta.get("og:url"),
        "image": [v for k, v in meta.items() if k == "og:image"],
        "brand": meta.get("product:brand"),
        "offers": {
            "price": price,
            "priceCurrency": currency,
            "availability": meta.get("product:availability"),
        },
    }
    return [product_from_node(node, page_url, external_id)]


def _main_first(products: list[ProductData], tree, page_url: str) -> list[ProductData]:
    """The page's own product first: its URL is the page's, or its name is the page heading."""
    if len(products) < 2:
        return products
    heading = " ".join(" ".join(tree.xpath("string(//h1)").split()).lower().split())
    own = {page_url.split("#")[0].split("?")[0], canonical_url(tree, page_url).split("?")[0]}

    def rank(item: tuple[int, ProductData]) -> tuple[int, int, int]:
        index, product = item
        same_url = product.url.split("?")[0] in own
        same_name = bool(heading) and product.title.lower() == heading
        return (not same_url, not same_name, index)

    return [p for _, p in sorted(enumerate(products), key=rank)]


def extract_products(
    body: bytes, page_url: str, content_type: str = ""
) -> tuple[list[ProductData], list[str]]:
    """Products on a page, the page's main product first, and notes about bad markup.

    `content_type` is the HTTP Content-Type header; its charset wins over the page's own.
    """
    tree = parse_html(body, content_type)
    if tree is None:
        return [], ["page is not parseable HTML"]
    external_id = canonical_url(tree, page_url)
    notes = []
    products, bad = _from_json_ld(tree, page_url, external_id)
    if bad:
        notes.append(f"{bad} unreadable JSON-LD block(s) skipped")
    if not products:
        products = _from_microdata(tree, page_url, external_id)
    if not products:
        products = _from_opengraph(tree, page_url, external_id)
    return _main_first(products, tree, page_url)[:1], notes


def page_title(body: bytes) -> str:
    tree = parse_html(body)
    titles = tree.xpath("//title/text()") if tree is not None else []
    return plain_text(titles[0], 200) if titles else ""
