"""Images: each stored picture once by content hash (ImageAsset), each product's listed images
(ProductImage) and the rule for which of them belong in the search index.
"""

from django.db import models

from catalog.models.base import TimestampedModel
from catalog.models.products import Product


class ImageAsset(TimestampedModel):
    """One stored image, identified by the sha256 of its downloaded bytes.

    Files are content-addressed (`thumbs/ab/cd/<sha256>.jpg`), so an image used by many products is
    stored, thumbnailed and embedded once.
    """

    sha256 = models.CharField(max_length=64, unique=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=10, help_text="Pillow format of the original: JPEG, PNG…")
    byte_size = models.PositiveIntegerField()
    thumbnail = models.ImageField(max_length=200, blank=True)
    placeholder = models.TextField(
        blank=True, help_text="Tiny data: URI shown before the thumbnail."
    )

    def __str__(self) -> str:
        return f"{self.sha256[:12]} {self.width}x{self.height}"


class ProductImageQuerySet(models.QuerySet):
    def indexable(self, *, model: str | None = None, **embedding_filters):
        """Images that belong in the search index: of an active product, downloaded, not shared
        (a logo or size chart on many products). With `model`: that also have a vector for it.

        The one spelling of the rule; `search.selectors.allowed_image_ids` has a raw-SQL twin
        (speed), kept in step by tests/catalog/test_indexable.py. One filter() call, so every
        condition on the embedding applies to the same (this model's) row; a second call would
        join the multi-valued relation again and match other models' rows.
        """
        conditions: dict = {"product__is_active": True, "is_shared": False, "asset__isnull": False}
        if model is not None:
            conditions["asset__embeddings__model_name"] = model
            conditions.update({f"asset__embeddings__{k}": v for k, v in embedding_filters.items()})
        elif embedding_filters:
            raise TypeError("embedding filters need a model")
        return self.filter(**conditions)


class ProductImage(TimestampedModel):
    """An image of a product, as the store lists it. Its primary key is its search-index id."""

    class FetchStatus(models.TextChoices):
        PENDING = "pending", "Not downloaded yet"
        OK = "ok", "Downloaded"
        FAILED = "failed", "Download failed"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images")
    source_url = models.URLField(max_length=2000)
    position = models.PositiveSmallIntegerField(default=0)
    asset = models.ForeignKey(
        ImageAsset, null=True, blank=True, on_delete=models.PROTECT, related_name="product_images"
    )
    is_shared = models.BooleanField(
        default=False, help_text="Same image on many products of the store (logo, size chart)."
    )
    fetch_status = models.CharField(
        max_length=8, choices=FetchStatus.choices, default=FetchStatus.PENDING
    )
    fetch_error = models.CharField(max_length=500, blank=True)
    fetch_attempts = models.PositiveSmallIntegerField(default=0)
    last_fetched_at = models.DateTimeField(null=True, blank=True)

    objects = ProductImageQuerySet.as_manager()

    class Meta:
        ordering = ["product", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "source_url"], name="image_unique_per_product"
            ),
        ]
        indexes = [models.Index(fields=["fetch_status"])]

    def __str__(self) -> str:
        return f"{self.product_id}#{self.position}"
