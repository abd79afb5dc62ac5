"""Product variants (a colour, a size), written only with their product."""

from django.db import models
from django.db.models import Q

from catalog.fields import OrderedJSONField
from catalog.models.base import TimestampedModel
from catalog.models.images import ProductImage
from catalog.models.products import Product, on_sale


class ProductVariant(TimestampedModel):
    """One purchasable variant of a product (a colour, a size), as the store lists it.

    Written only with its product (catalog.services.upsert_products), in the same transaction.
    `image` is the product's own picture of this variant, when the store names one.
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    external_id = models.CharField(max_length=255, help_text="The platform's variant id.")
    position = models.PositiveSmallIntegerField(default=0)
    title = models.CharField(max_length=300, blank=True)
    # In the store's order ("Red / M"), on PostgreSQL too (see catalog.fields).
    options = OrderedJSONField(default=dict, blank=True, help_text='{"Colour": "Red"}')
    sku = models.CharField("SKU", max_length=100, blank=True, db_index=True)
    gtin = models.CharField("GTIN", max_length=14, blank=True, db_index=True)
    mpn = models.CharField("MPN", max_length=100, blank=True)
    price = models.DecimalField(max_digits=15, decimal_places=3, null=True, blank=True)
    list_price = models.DecimalField(max_digits=15, decimal_places=3, null=True, blank=True)
    availability = models.CharField(
        max_length=12, choices=Product.Availability.choices, default=Product.Availability.UNKNOWN
    )
    image_url = models.URLField(max_length=2000, blank=True)
    image = models.ForeignKey(
        ProductImage,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="variants",
        help_text="The product's picture of this variant.",
    )
    url = models.URLField(max_length=2000, blank=True, help_text="The variant's own link.")

    class Meta:
        ordering = ["product", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "external_id"], name="variant_unique_per_product"
            ),
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gte=0), name="variant_price_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.title or self.external_id

    @property
    def is_on_sale(self) -> bool:
        return on_sale(self.price, self.list_price)

    @property
    def label(self) -> str:
        """ "Red / M": the option values, or the title when the store gives no options."""
        return " / ".join(str(v) for v in self.options.values() if v) or self.title
