"""Stored images: one ImageAsset per content hash (shared by every product showing it), a
ProductImage's download outcome, deferral, and the shared-image (logo, size chart) flag."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from catalog.models import (
    ImageAsset,
    ProductImage,
    Store,
)


def get_or_create_asset(
    *,
    sha256: str,
    width: int,
    height: int,
    format: str,
    byte_size: int,
    thumbnail_name: str,
    placeholder: str,
) -> ImageAsset:
    """One ImageAsset per content hash (the unique constraint decides, not a lookup race)."""
    ImageAsset.objects.bulk_create(
        [
            ImageAsset(
                sha256=sha256,
                width=width,
                height=height,
                format=format,
                byte_size=byte_size,
                thumbnail=thumbnail_name,
                placeholder=placeholder,
            )
        ],
        ignore_conflicts=True,
    )
    return ImageAsset.objects.get(sha256=sha256)


def mark_image_downloaded(*, image: ProductImage, asset: ImageAsset) -> None:
    ProductImage.objects.filter(pk=image.pk).update(
        asset=asset,
        fetch_status=ProductImage.FetchStatus.OK,
        fetch_error="",
        fetch_attempts=image.fetch_attempts + 1,
        last_fetched_at=timezone.now(),
        updated_at=timezone.now(),
    )


def mark_image_failed(*, image: ProductImage, reason: str) -> None:
    ProductImage.objects.filter(pk=image.pk).update(
        fetch_status=ProductImage.FetchStatus.FAILED,
        fetch_error=reason[:500],
        fetch_attempts=image.fetch_attempts + 1,
        last_fetched_at=timezone.now(),
        updated_at=timezone.now(),
    )


def defer_images(*, image_ids: Iterable[int], reason: str) -> int:
    """Leave images pending (no attempt counted) but note why and when, so the next run tries
    them after images that were never tried (a blocked host must not starve the others)."""
    now = timezone.now()
    return ProductImage.objects.filter(
        pk__in=list(image_ids), fetch_status=ProductImage.FetchStatus.PENDING
    ).update(fetch_error=reason[:500], last_fetched_at=now, updated_at=now)


def flag_shared_images(*, store: Store, min_products: int) -> int:
    """Flag images whose asset appears on >= min_products products of the store (size charts,
    logos); they stay stored but out of search. Returns how many rows are flagged now."""
    shared_assets = (
        ProductImage.objects.filter(product__store=store, asset__isnull=False)
        .values("asset_id")
        .annotate(n=Count("product_id", distinct=True))
        .filter(n__gte=min_products)
        .values_list("asset_id", flat=True)
    )
    in_store = ProductImage.objects.filter(product__store=store)
    with transaction.atomic():
        in_store.filter(is_shared=True).exclude(asset_id__in=shared_assets).update(is_shared=False)
        in_store.filter(asset_id__in=shared_assets, is_shared=False).update(is_shared=True)
    return in_store.filter(is_shared=True).count()
