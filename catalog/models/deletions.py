"""Tombstones of deleted products: what "changed since the index was built" cannot see otherwise.

Search corrects a published index version for the live catalogue through the products changed
since it read the catalogue (`updated_at` after that time, on its index: search.live_rows,
search.keyword_delta). A deleted product leaves no row to be seen there, so the database keeps
one here: a trigger on `catalog_product` (migration 0012) writes (id, when) for every deleted
row, whatever deleted it (the admin's delete action, a store's cascade, `queryset.delete()`, raw
SQL), and those queries read these rows too (UNION ALL on the `deleted_at` index: nothing to
read while no product was deleted since). `prune` drops the tombstones no kept index version
needs any more (search.live_rows.prune_deletions, run by each index build).
"""

from datetime import datetime

from django.db import models
from django.utils import timezone


class ProductDeletion(models.Model):
    # The deleted product's id (no foreign key: the row is gone).
    product_id = models.BigIntegerField()
    deleted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # Covering: "deleted since" reads ids from the index alone; pruning is a range on it.
        indexes = [
            models.Index(fields=["deleted_at", "product_id"], name="product_deletion_since"),
        ]

    def __str__(self) -> str:
        return f"product {self.product_id} deleted at {self.deleted_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def prune(cls, before: datetime) -> int:
        """Delete the tombstones written before `before`; returns how many."""
        deleted, _ = cls.objects.filter(deleted_at__lt=before).delete()
        return deleted
