"""Prices before tax: a markup price that the page itself shows as "excl. VAT" beside a higher
tax-included price is the net price, and a shopper pays the gross one.

Shops (Czech, German and Polish B2B-leaning ones above all) put the net amount into
`itemprop="price"` or JSON-LD while the buy box shows "2 000 Kč s DPH / 1 652,89 Kč bez DPH".
The rule (README: "tax included where both are shown") is applied only when the page shows
the markup's amount labelled as before tax and the visible price is above it by at most the
highest VAT rate; otherwise the markup price stands.
"""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from pipeline.platforms.extract.amounts import amounts
from pipeline.platforms.extract.microdata import is_small, label_parts
from pipeline.platforms.extract.phrases import EXCL_TAX

# Class/id words of an element holding the price before tax.
NET_WORDS = {"bez", "netto", "net", "exvat", "exclvat", "excluding", "exkl", "excl"}
NET_WORDS |= {"excluded", "exclusive", "pretax", "ht", "nett"}
HIGHEST_VAT = Decimal("1.28")  # Hungary's 27 % and a rounding cent


def net_amounts(region: etree._Element, currency: str) -> set[Decimal]:
    """Amounts the page shows as before tax: in a net-labelled element or beside an
    "excl. VAT" / "bez DPH" / "税抜" phrase."""
    found: set[Decimal] = set()
    for el in region.iter():
        if not isinstance(el.tag, str) or not is_small(el, 6):
            continue
        text = " ".join(" ".join(el.itertext()).split())
        if not text or len(text) > 80:
            continue
        if label_parts(el) & NET_WORDS:
            found.update(amounts(text, currency) or amounts(text, currency, loose=len(text) < 15))
        for match in EXCL_TAX.finditer(text):
            found.update(amounts(match.group(0), currency, loose=True))
    return found


def gross_for_net(
    region: etree._Element, price: Decimal, currency: str, shown: Decimal | None
) -> Decimal | None:
    """The visible tax-included price when the markup's `price` is shown as the net one."""
    if shown is None or not price < shown <= price * HIGHEST_VAT:
        return None
    return shown if price in net_amounts(region, currency) else None
