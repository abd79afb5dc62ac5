"""A result card (without ?debug=1) written by Python: what the card macro of
templates/jinja2/partials/_product_card.html writes for the same hit, byte for byte.

At 1 M products nearly every card of a unique query is one no recent search showed (search.cards
keeps rendered cards), and Jinja2's runtime around the card's ~40 lookups, ~15 escaped values
and three calls cost about three quarters of writing one (~50 µs a card, ~0.85 ms a page of
which ~17 cards are new). Here the same values are read once and written between the
template's own text, through the same escaping (`django_escape`), filters and price macro.

The template stays the source: it is what Tailwind reads for the classes, what ?debug=1 and
DEBUG render, and what tests/search/test_card_html.py holds this writer to (and `write_price`
to partials/_price.html), over hits that take
every branch (picture, placeholder, thumbnail or none, variant with or without a price, brand,
price range, sale price, no price, one or several other stores, an offer in stock in the same
currency or not, each availability, text or photo page, matched words or looks). A change to
the card template fails that test until it is made here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.template.defaultfilters import urlencode

from search.jinja_env import django_escape as esc
from search.jinja_env import file_url
from search.templatetags.prices import amount, money

_HEAD = (
    '\n<li>\n  <article class="card card-sm bg-base-100 shadow-sm h-full relative hover:shadow-md '
    'focus-within:ring-2 focus-within:ring-primary" data-product-id="'
)
_FIGURE = '">\n    <figure class="relative aspect-square overflow-hidden bg-base-300 rounded-t-box">\n      '
_PLACEHOLDER = '<img src="{}" alt="" aria-hidden="true" class="absolute inset-0 h-full w-full object-cover blur-md scale-110">'
_THUMB = (
    '<img src="{}" alt="" loading="lazy" decoding="async" width="{}" height="{}" '
    'class="result-thumb absolute inset-0 h-full w-full object-contain">'
)
_NO_PHOTO = '\n        <span class="text-base-content/60 text-sm">No photo yet</span>\n      '
_BODY = (
    '\n    </figure>\n    <div class="card-body gap-1">\n      \n      '
    '<h3 class="card-title text-sm leading-snug line-clamp-2 min-h-[2lh]">\n        <a href="'
)
_TITLE = '" class="after:absolute after:inset-0 focus:outline-none"><bdi>'
_STORE = '</bdi></a>\n      </h3>\n      <p class="text-xs text-base-content/70"><bdi>'
_VARIANT = '<p class="text-xs" data-variant="{}"><bdi>{}</bdi></p>'
_PRICE = '\n      <p class="font-semibold" data-price="'
_OFFERS = '<p class="text-xs text-base-content/70" data-offers="{0}">also at {0} store{1}'
_TAIL = (
    '\n      <div class="mt-auto flex flex-wrap items-center gap-1 text-xs">\n        \n        '
)
_AVAILABILITY = {
    "in_stock": '<span class="text-base-content/80">In stock</span>',
    "out_of_stock": '<span class="badge badge-warning badge-sm">Out of stock</span>',
}
_MATCH = {
    None: "",
    True: '<span class="text-base-content/70" data-match="words">Matches your words</span>',
    False: '<span class="text-base-content/70" data-match="looks">Looks similar</span>',
}
_END = "\n        \n      </div>\n    </div>\n  </article>\n</li>\n"


def write_card(hit, text_page: bool, product_url: Callable[[Any], str]) -> str:
    """The card macro's HTML for `hit` with debug off, on a page whose mode is "text" or not."""
    product, variant, image = hit.product, hit.variant, hit.image
    pk, currency = product.pk, product.currency
    parts = [_HEAD, esc(pk), _FIGURE]
    if image is not None:
        parts.append(_picture(image.asset))
    else:
        parts.append(_NO_PHOTO)
    parts += (_BODY, esc(product_url(pk)))
    if variant:
        parts += ("?variant=", esc(urlencode(variant.external_id)))
    parts += (_TITLE, esc(product.title), _STORE, esc(product.store.name), "</bdi>")
    if product.brand:
        parts += (" · <bdi>", esc(product.brand), "</bdi>")
    parts.append("</p>\n      \n      ")
    if variant:
        parts.append(_VARIANT.format(esc(variant.external_id), esc(variant.label)))
    parts += (_PRICE, esc(amount(product.price, currency)), '">')
    if variant and variant.price is not None:
        parts.append(write_price(variant.price, None, variant.list_price, currency))
    elif product.price is not None:
        parts.append(write_price(product.price, product.price_max, product.list_price, currency))
    else:
        parts.append("Price at store")
    parts.append("</p>\n      ")
    parts.append(_offers(hit))
    availability = (variant.availability if variant else "") or product.availability
    parts += (_TAIL, _AVAILABILITY.get(availability, ""), "\n        \n        ")
    parts += (_MATCH[bool(hit.matches_words) if text_page else None], _END)
    return "".join(parts)


def _picture(asset) -> str:
    placeholder, thumbnail = asset.placeholder, asset.thumbnail
    return "".join(
        (
            "\n        ",
            _PLACEHOLDER.format(esc(placeholder)) if placeholder else "",
            "\n        ",
            _THUMB.format(esc(file_url(thumbnail)), esc(asset.width), esc(asset.height))
            if thumbnail
            else "",
            "\n      ",
        )
    )


def _offers(hit) -> str:
    stores = hit.other_stores
    if not stores:
        return ""
    # Joined, never added: str + Markup would escape the str.
    offer = hit.cheapest_offer
    return "".join(
        (
            _OFFERS.format(esc(stores), esc("" if stores == 1 else "s")),
            ", from " if offer else "",
            esc(money(offer.price, offer.currency)) if offer else "",
            "</p>",
        )
    )


def write_price(price, price_max, list_price, currency: str) -> str:
    """What the `price_html` macro of partials/_price.html writes (a card's price: written
    once per card the cache keeps, so not kept again here)."""
    parts = ["<span data-price-now>", esc(money(price, currency))]
    if price_max is not None and price_max > price:
        parts += ("\u2013", esc(money(price_max, currency)))  # an en dash
    parts.append("</span>")
    if list_price is not None and price is not None and list_price > price:
        parts += (_WAS.format(esc(amount(list_price, currency))), esc(money(list_price, currency)))
        parts.append("</del>")
    parts.append("\n")
    return "".join(parts)


_WAS = (
    ' <del class="text-sm font-normal text-base-content/60" data-list-price="{}">'
    '<span class="sr-only">was </span>'
)
