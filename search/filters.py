"""What a shopper narrowed a search to (`SearchFilters`) and the orders a shopper can ask for.

One value object with two renderings of the same rule: `sql()` (a WHERE fragment for the raw
keyword and id-set queries) and `queryset()` (the ORM, for facets and browsing); a parity test
(tests/search/test_filters.py) keeps them selecting the same products. Used by forms, services,
selectors and the columnar snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from catalog.models import Product
from search.attributes import ATTRIBUTES

# Orders a shopper can ask for. A text search is first ranked by relevance; the other orders
# re-sort its candidate list (the CANDIDATE_DEPTH best matches), so "cheapest first" means the
# cheapest of the products that match, never the cheapest product in the catalogue.
RELEVANCE = "relevance"
SORT_CHOICES = [
    (RELEVANCE, "Best match"),
    ("price_asc", "Price: low to high"),
    ("price_desc", "Price: high to low"),
    ("newest", "Newest"),
]
SORTS = frozenset(value for value, _ in SORT_CHOICES)


@dataclass(frozen=True)
class SearchFilters:
    """What a shopper narrowed the search to. Empty tuples and None mean "any"."""

    stores: tuple[str, ...] = ()  # store slugs
    brands: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool = False
    # Zero-shot attributes: ((name, values), ...) with names from search.attributes.ATTRIBUTES.
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (
            self.stores
            or self.brands
            or self.categories
            or any(values for _, values in self.attributes)
            or self.min_price is not None
            or self.max_price is not None
            or self.in_stock
        )

    @property
    def is_structural(self) -> bool:
        """Whether only columns that change with the catalogue's structure are filtered (stores,
        brands, categories, attributes): no price or stock, which change between index builds."""
        return self.min_price is None and self.max_price is None and not self.in_stock

    def structural(self) -> SearchFilters:
        """The same filter without its price and stock parts: a superset of what it selects."""
        return replace(self, min_price=None, max_price=None, in_stock=False)

    def sql(self, alias: str = "p") -> tuple[str, list]:
        """A WHERE fragment over catalog_product `alias` (active products only) and its params."""
        clauses = [f"{alias}.is_active"]
        params: list = []
        if self.stores:
            marks = ",".join("%s" for _ in self.stores)
            clauses.append(
                f"{alias}.store_id IN (SELECT id FROM catalog_store WHERE slug IN ({marks}))"
            )
            params += list(self.stores)
        for column, values in (("brand", self.brands), ("category", self.categories)):
            if values:
                clauses.append(f"{alias}.{column} IN ({','.join('%s' for _ in values)})")
                params += list(values)
        # Decimal, as the ORM binds it: a float could round a bound across a stored price.
        if self.min_price is not None:
            clauses.append(f"{alias}.price >= %s")
            params.append(self.min_price)
        if self.max_price is not None:
            clauses.append(f"{alias}.price <= %s")
            params.append(self.max_price)
        if self.in_stock:
            clauses.append(f"{alias}.availability = %s")
            params.append(Product.Availability.IN_STOCK)
        for name, values in self.attributes:
            if name in ATTRIBUTES and values:  # the column name comes from code, never a shopper
                clauses.append(
                    f"{alias}.id IN (SELECT product_id FROM catalog_productattributes "
                    f"WHERE {name} IN ({','.join('%s' for _ in values)}))"
                )
                params += list(values)
        return " AND ".join(clauses), params

    def queryset(self):
        """The same filter as an ORM queryset of active products."""
        qs = Product.objects.active()
        if self.stores:
            qs = qs.filter(store__slug__in=self.stores)
        if self.brands:
            qs = qs.filter(brand__in=self.brands)
        if self.categories:
            qs = qs.filter(category__in=self.categories)
        if self.min_price is not None:
            qs = qs.filter(price__gte=self.min_price)
        if self.max_price is not None:
            qs = qs.filter(price__lte=self.max_price)
        if self.in_stock:
            qs = qs.in_stock()
        for name, values in self.attributes:
            if name in ATTRIBUTES and values:
                qs = qs.filter(**{f"attributes__{name}__in": values})
        return qs
