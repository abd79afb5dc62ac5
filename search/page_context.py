"""What the results page shows beside its hits, built from the request and the search page:
the facet groups (chosen values always listed), the applied-filter chips, and a lenient reading of
whatever a link or a hand-edited URL holds. Plain functions over plain data, used by the views.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from urllib.parse import urlencode

from search.facets import FacetRow
from search.forms import SearchForm

FACET_LABELS = {
    "store": "Store",
    "brand": "Brand",
    "category": "Category",
    "product_type": "Type",
    "colour": "Colour",
    "pattern": "Pattern",
    "material": "Material",
}


def facet_groups(page, filters) -> list[dict]:
    """Facet options for the template: counts for this query, chosen values always listed."""
    chosen = {"store": filters.stores, "brand": filters.brands, "category": filters.categories}
    picked = dict(filters.attributes)
    chosen |= {name: picked.get(name, ()) for name in FACET_LABELS if name not in chosen}
    groups = []
    for name, label in FACET_LABELS.items():
        rows = list((page.facets if page else {}).get(name, []))
        listed = {row.value for row in rows}
        rows += [FacetRow(value, value, 0) for value in chosen[name] if value not in listed]
        options = [
            {
                "value": row.value,
                "label": row.label,
                "count": row.count,
                "checked": row.value in chosen[name],
                "id": option_id(name, row.value),
            }
            for row in rows
        ]
        if options:
            groups.append({"name": name, "label": label, "options": options})
    return groups


@lru_cache(maxsize=8192)  # about 50 a page, the same values from one query to the next
def option_id(name: str, value: str) -> str:
    """A facet checkbox's id: stable per value, so htmx gives focus back to the same box after
    a swap."""
    return f"f-{name}-{hashlib.sha1(value.encode()).hexdigest()[:10]}"


# Shown next to a parameter the page could not use; it still searches without it.
_NOTES = {
    "min_price": "“{}” is not a price, so there is no minimum.",
    "max_price": "“{}” is not a price, so there is no maximum.",
    "page": "There is no page “{}”; this is the first page.",
}


def lenient_search_form(params) -> tuple[SearchForm, dict[str, str]]:
    """A valid SearchForm for whatever a link or a hand-edited URL holds, and notes on what changed.

    Old and shared links must never blank the page: a minimum above the maximum is swapped, an
    unusable parameter is dropped (and noted next to its field), the search still runs.
    """
    data, notes = params.copy(), {}
    low, high = _decimal(data.get("min_price")), _decimal(data.get("max_price"))
    if low is not None and high is not None and low > high:
        data["min_price"], data["max_price"] = data["max_price"], data["min_price"]
        notes["max_price"] = "The minimum was above the maximum, so they were swapped."
    form = SearchForm(data)
    for _ in range(len(form.fields)):  # each round drops at least one field
        if form.is_valid():
            return form, notes
        for name in form.errors:
            value = data.get(name, "")
            notes[name] = _NOTES.get(name, "“{}” could not be used, so it was left out.").format(
                value[:40]
            )
            data.pop(name, None)
        form = SearchForm(data)
    form = SearchForm({"q": params.get("q", "")})
    form.is_valid()
    return form, notes


def _decimal(value) -> Decimal | None:
    try:
        number = Decimal(value) if value else None
    except (InvalidOperation, ValueError):
        return None
    return number if number is not None and number.is_finite() else None


def applied_filters(request, page, form) -> tuple[list[dict], str]:
    """One chip per applied filter (its label and the URL without it), and the URL without any."""
    params = request.GET.copy()
    for name in ("page", "fragment"):
        params.pop(name, None)
    names = {row.value: row.label for row in (page.facets if page else {}).get("store", [])}
    chips = []

    def without(name: str, value: str) -> str:
        rest = params.copy()
        rest.setlist(name, [v for v in params.getlist(name) if v != value])
        return "?" + rest.urlencode()

    for name in FACET_LABELS:
        for value in params.getlist(name):
            if value.strip():
                label = names.get(value, value) if name == "store" else value
                chips.append({"label": label, "url": without(name, value)})
    for name, text in (("min_price", "From {}"), ("max_price", "Up to {}")):
        value = form.cleaned_data.get(name)
        if value is not None:
            other = "max_price" if name == "min_price" else "min_price"
            rest = params.copy()  # the URL without it (and with a swapped pair put right)
            rest.pop(name, None)
            if form.cleaned_data.get(other) is not None:
                rest[other] = str(form.cleaned_data[other])
            chips.append({"label": text.format(value), "url": "?" + rest.urlencode()})
    if params.get("in_stock"):
        chips.append({"label": "In stock", "url": without("in_stock", params["in_stock"])})
    keep = {k: params[k] for k in ("q", "sort") if params.get(k)}
    return chips, "?" + urlencode(keep)
