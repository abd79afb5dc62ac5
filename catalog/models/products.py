"""Products, the rules that read their stored values (amount text, combined availability) and
the zero-shot attributes of what their main image shows.
"""

from collections.abc import Iterable
from decimal import Decimal

from django.db import models
from django.db.models import Q

from catalog.models.base import TimestampedModel
from catalog.models.stores import Store


class ProductQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)

    def in_stock(self):
        return self.filter(availability=Product.Availability.IN_STOCK)


class Product(TimestampedModel):
    class Availability(models.TextChoices):
        IN_STOCK = "in_stock", "In stock"
        OUT_OF_STOCK = "out_of_stock", "Out of stock"
        PREORDER = "preorder", "Pre-order"
        UNKNOWN = "unknown", "Unknown"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="products")
    external_id = models.CharField(max_length=255, help_text="The platform's own product id.")
    url = models.URLField(max_length=2000)
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True, help_text="Plain text.")
    brand = models.CharField(max_length=200, blank=True)
    category = models.CharField(max_length=300, blank=True)
    tags = models.JSONField(default=list, blank=True)
    # Three decimals: KWD, BHD, JOD and OMR prices have fils (search.prices shows each currency
    # in its own minor units).
    price = models.DecimalField(max_digits=15, decimal_places=3, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, help_text="ISO 4217")
    availability = models.CharField(
        max_length=12, choices=Availability.choices, default=Availability.UNKNOWN
    )
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    is_active = models.BooleanField(default=True)
    content_hash = models.CharField(
        max_length=64, blank=True, help_text="Hash of the scraped fields, to detect changes."
    )
    sku = models.CharField("SKU", max_length=100, blank=True, db_index=True)
    gtin = models.CharField(
        "GTIN",
        max_length=14,
        blank=True,
        db_index=True,
        help_text="Digits only: GTIN-8, EAN-13 (UPC-A as 13 digits) or GTIN-14.",
    )
    mpn = models.CharField("MPN", max_length=100, blank=True, db_index=True)
    list_price = models.DecimalField(
        max_digits=15,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="The regular price, struck through while the product is on sale.",
    )
    price_max = models.DecimalField(
        max_digits=15,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="The highest variant price when variants differ (price is the lowest).",
    )
    field_sources = models.JSONField(
        default=dict,
        blank=True,
        help_text="Where each field was read: api, json-ld, microdata, opengraph, meta, visible-text.",
    )

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["store", "title"]
        constraints = [
            models.UniqueConstraint(
                fields=["store", "external_id"], name="product_unique_per_store"
            ),
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gte=0), name="product_price_non_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["is_active", "availability"]),
            models.Index(fields=["brand"]),
            models.Index(fields=["category"]),
            models.Index(fields=["price"]),
            # Products changed since a keyword index was written (search.keyword_delta).
            models.Index(fields=["updated_at"], name="product_updated_at"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_on_sale(self) -> bool:
        return on_sale(self.price, self.list_price)


def on_sale(price: Decimal | None, list_price: Decimal | None) -> bool:
    """On sale: a list (regular) price above the selling price. Products and variants use it."""
    return list_price is not None and price is not None and list_price > price


def amount_text(value: Decimal | None) -> str | None:
    """A stored amount as text: two decimals ("9.50"), three only when it has them (KWD 12.345).

    Content hashes and the admin use it; pages and the API write each currency in its own minor
    units (search.prices).
    """
    if value is None:
        return None
    return f"{value:.2f}" if value == round(value, 2) else f"{value:.3f}"


def combined_availability(values: Iterable[str]) -> str:
    """A product's availability from its variants': in stock when any variant is in stock.

    The one place this rule lives (the pipeline writes it, filters and cards read the result):
    else pre-order when any is, out of stock when every variant is known to be out, else unknown.
    """
    values = set(values)
    for state in (Product.Availability.IN_STOCK, Product.Availability.PREORDER):
        if state in values:
            return state
    if values == {Product.Availability.OUT_OF_STOCK}:
        return Product.Availability.OUT_OF_STOCK
    return Product.Availability.UNKNOWN


class ProductAttributes(TimestampedModel):
    """What a product's main image shows, by zero-shot classification against a taxonomy.

    Written by the `attributes` pipeline stage (`pipeline/attributes.py`) from stored image
    vectors; one row per product, kept apart from Product so re-labelling never rewrites the
    product table (or its full-text triggers). Empty values mean "no label was confident enough".
    `key` digests the model, the taxonomy and the image, so unchanged products are skipped.
    """

    product = models.OneToOneField(
        Product, primary_key=True, on_delete=models.CASCADE, related_name="attributes"
    )
    colour = models.CharField(max_length=40, blank=True, db_index=True)
    pattern = models.CharField(max_length=40, blank=True, db_index=True)
    material = models.CharField(max_length=40, blank=True, db_index=True)
    product_type = models.CharField(
        max_length=80,
        blank=True,
        db_index=True,
        help_text="Normalised type; the store's own category stays on the product.",
    )
    scores = models.JSONField(
        default=dict, blank=True, help_text="Top labels per attribute with their confidence."
    )
    model_name = models.CharField(max_length=300)
    key = models.CharField(max_length=64, help_text="Digest of model, taxonomy and image.")

    class Meta:
        verbose_name_plural = "product attributes"

    def __str__(self) -> str:
        values = [self.colour, self.pattern, self.material, self.product_type]
        return ", ".join(v for v in values if v) or "(none)"
