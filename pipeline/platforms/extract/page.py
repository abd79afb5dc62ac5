"""`extract_products`: the page's own product from every kind of markup, then visible text.

Order of trust, field by field: JSON-LD, then microdata and RDFa, then a Shopify theme's
embedded product JSON, then OpenGraph / product meta tags, then what the page shows (heading,
labelled price, stock phrases, "EAN: …" lines). The page's main product is chosen among
several Product nodes (see choose.py); sizes or colours given as separate nodes become
variants. The result is one product or none; notes say what was wrong or left empty. A page
without product markup becomes a product only with a visible heading and a clear price, and
never when its markup says it is an article or a listing.
"""

from __future__ import annotations

from pipeline.platforms.base import ProductData
from pipeline.platforms.extract.amounts import amounts
from pipeline.platforms.extract.choose import (
    attach_variants,
    fold_siblings,
    is_product,
    is_same_item,
    main_node,
)
from pipeline.platforms.extract.combine import fill_gaps
from pipeline.platforms.extract.document import (
    bare_url,
    canonical_url,
    country_hint,
    heading,
    parse_html,
)
from pipeline.platforms.extract.embedded import product_from_embedded
from pipeline.platforms.extract.facts import read_facts
from pipeline.platforms.extract.jsonld import (
    index_ids,
    json_ld_blocks,
    resolve_deep,
    types,
    walk,
)
from pipeline.platforms.extract.meta import meta_kind, product_from_meta
from pipeline.platforms.extract.microdata import microdata_nodes
from pipeline.platforms.extract.rdfa import rdfa_nodes
from pipeline.platforms.extract.schema import mark_sources, product_from_node
from pipeline.platforms.extract.shown import shown_instead
from pipeline.platforms.extract.state import product_from_state
from pipeline.platforms.extract.tax import gross_for_net
from pipeline.platforms.extract.visible import main_region, read_visible
from pipeline.platforms.prices import tidy_amounts

# Page types (schema.org, og:type) that are not one product's page.
# (Not ItemList or FAQPage: product pages carry those for related products and questions.)
OTHER_PAGES = {
    "article", "blogposting", "newsarticle", "blog", "collectionpage", "searchresultspage",
    "profilepage", "aboutpage", "contactpage", "recipe", "event",
}  # fmt: skip


def _main_of(nodes: list[dict], ids: dict, urls: set[str], title: str, base: str):
    products = [n for n in nodes if is_product(n)]
    main = main_node(fold_siblings(attach_variants(products, ids)), urls, title, base)
    return resolve_deep(main, ids) if main is not None else None


def _structured(tree, page_url: str, external_id: str, country: str, notes: list[str]):
    """Readings from JSON-LD and microdata (main product only), in order of trust, and
    whether the markup says the page is something else (an article, a category listing)."""
    blocks, bad = json_ld_blocks(tree)
    kinds = {t for b in blocks for n in walk(b) for t in types(n)}
    if bad:
        notes.append(f"{bad} unreadable JSON-LD block(s) skipped")
    urls = {bare_url(page_url), bare_url(external_id)}
    title = heading(tree)
    found: list[ProductData] = []
    ids = index_ids(blocks)
    ld_main = _main_of([n for b in blocks for n in walk(b)], ids, urls, title, page_url)
    if ld_main is not None:
        found.append(product_from_node(ld_main, page_url, external_id, "json-ld", country))
    md_nodes = microdata_nodes(tree, page_url) + rdfa_nodes(tree, page_url)
    md_nodes_all = [n for b in md_nodes for n in walk(b)]
    md_main = _main_of(md_nodes_all, index_ids(md_nodes), urls, title, page_url)
    if md_main is not None and (ld_main is None or is_same_item(ld_main, md_main)):
        found.append(product_from_node(md_main, page_url, external_id, "microdata", country))
    embedded = product_from_embedded(tree, page_url, external_id)
    if embedded is None:
        embedded = product_from_state(tree, page_url, external_id, title, lambda: _shown(tree))
    if embedded is not None and (not found or _same_title(found[0], embedded)):
        found.append(embedded)
    return found, bool(kinds & OTHER_PAGES)


def _shown(tree) -> set:
    """Every amount the product area shows (bare numbers too), for checking state prices."""
    text = " ".join(" ".join(main_region(tree).itertext()).split())
    return set(amounts(tidy_amounts(text), "", loose=True))


def _same_title(a: ProductData, b: ProductData) -> bool:
    x, y = a.title.casefold(), b.title.casefold()
    return bool(x and y) and (x in y or y in x)


def _visible(tree, page_url: str, external_id: str, country: str, known: ProductData | None):
    """A reading of what the page shows (title, price, stock, list price, labelled ids)."""
    region = main_region(tree)
    price, currency = (known.price, known.currency) if known else (None, "")
    seen = read_visible(tree, region, page_url, country, (price, currency))
    product = ProductData(external_id=external_id, url=page_url, title=seen.title)
    product.price, product.currency = seen.price, seen.currency
    product.image_urls = [seen.image] if seen.image else []
    if seen.list_price is not None and (price is None or seen.price in (None, price)):
        product.price = seen.price if price is None else price
        product.currency = seen.currency if price is None else currency
        product.list_price = seen.list_price
    product.availability = seen.availability
    if price is not None and (gross := gross_for_net(region, price, currency, seen.price)):
        known.price, known.list_price = gross, None  # the markup held the price before tax
        known.sources["price"] = "visible-text"
    stale = known and known.availability == "in_stock" and not known.variants
    if stale and (instead := shown_instead(region)):  # the page says otherwise
        known.availability = instead
        known.sources["availability"] = "visible-text"
    wanted = {f for f in ("sku", "gtin", "brand") if not known or not getattr(known, f)}
    for name, value in read_facts(region, wanted).items():
        setattr(product, name, value)
    mark_sources(product, "visible-text")
    return product, seen.notes, seen.on_request


def extract_products(
    body: bytes, page_url: str, content_type: str = ""
) -> tuple[list[ProductData], list[str]]:
    """The page's main product (a list of one, or empty) and notes about the markup.

    `content_type` is the HTTP Content-Type header; its charset wins over the page's own.
    Never raises on bad markup; a page with no product yields [] and a note.
    """
    tree = parse_html(body, content_type)
    if tree is None:
        return [], ["page is not parseable HTML"]
    external_id = canonical_url(tree, page_url)
    country = country_hint(tree, page_url)
    notes: list[str] = []
    readings, other_kind = _structured(tree, page_url, external_id, country, notes)
    meta, claims = product_from_meta(tree, page_url, external_id, country)
    other_kind = other_kind or meta_kind(tree) in OTHER_PAGES
    if readings or claims:
        readings.append(meta)
    product = readings[0] if readings else None
    for other in readings[1:]:
        fill_gaps(product, other)
    visible, why, on_request = _visible(tree, page_url, external_id, country, product)
    if product is None:
        if other_kind:
            return [], [*notes, "the markup says this is not a product page"]
        if not (visible.title and (visible.price is not None or on_request)):
            return [], [*notes, *why, "no product markup and no visible heading with a price"]
        product = visible
    else:
        fill_gaps(product, visible)
    notes += [n for n in why if any(field in n for field in _gaps(product))]
    return ([product], notes) if product.title else ([], [*notes, "product has no title"])


def _gaps(product: ProductData) -> list[str]:
    """The shopper-facing fields visible text could still fill."""
    empty = {"title": not product.title, "price": product.price is None}
    empty["stock"] = product.availability == "unknown"
    return [name for name, missing in empty.items() if missing]
