"""Product upserts per listing page: classify (created / updated / unchanged, the one rule for dry
and real runs), write products, their variants and their image lists in one transaction; touch
and deactivate. Upserts rely on the unique constraint (store, external_id)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from catalog.models import (
    Product,
    ProductImage,
    ProductVariant,
    Store,
)
from catalog.services.data import (
    IDENTITY_FIELDS,
    MAX_VARIANTS,
    PRODUCT_FIELDS,
    VARIANT_FIELDS,
    ProductData,
    VariantData,
    product_summary,
)


@dataclass
class UpsertCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    created_ids: list[str] = field(default_factory=list)
    updated_ids: list[str] = field(default_factory=list)


def classify_products(*, store: Store, items: Sequence[ProductData]) -> UpsertCounts:
    """What upsert_products would do, without writing (for --dry-run): the same classifier."""
    counts, _ = _classify(store, _dedupe(items))
    return counts


def _classify(store: Store, items: Sequence[ProductData]) -> tuple[UpsertCounts, list[ProductData]]:
    """The one rule for dry and real runs: new -> created; changed or coming back after being
    deactivated -> updated; else unchanged. Returns the counts and the items to write."""
    existing = {
        ext: (chash, active)
        for ext, chash, active in Product.objects.filter(
            store=store, external_id__in=[i.external_id for i in items]
        ).values_list("external_id", "content_hash", "is_active")
    }
    counts, changed = UpsertCounts(), []
    for item in items:
        old = existing.get(item.external_id)
        if old is None:
            counts.created += 1
            counts.created_ids.append(item.external_id)
        elif old[0] != item.content_hash() or not old[1]:
            counts.updated += 1
            counts.updated_ids.append(item.external_id)
        else:
            counts.unchanged += 1
            continue
        changed.append(item)
    return counts, changed


def count_existing_products(*, store: Store, external_ids: Iterable[str]) -> int:
    """How many of these products exist (what touch_products would count), without writing."""
    return Product.objects.filter(store=store, external_id__in=list(set(external_ids))).count()


def _dedupe(items: Iterable[ProductData]) -> list[ProductData]:
    # Some stores repeat a product across pages; the last copy wins, as it would in the DB.
    return list({i.external_id: i for i in items}.values())


def upsert_products(
    *, store: Store, items: Sequence[ProductData], seen_at: datetime
) -> UpsertCounts:
    """Create or update one listing page of products and their image lists, in one transaction."""
    items = _dedupe(items)
    with transaction.atomic():
        counts, changed = _classify(store, items)
        _write_products(store, changed, seen_at)
        changed_ids = {i.external_id for i in changed}
        unchanged_ids = [i.external_id for i in items if i.external_id not in changed_ids]
        Product.objects.filter(store=store, external_id__in=unchanged_ids).update(
            last_seen_at=seen_at
        )
        ids = dict(
            Product.objects.filter(
                store=store, external_id__in=[i.external_id for i in changed]
            ).values_list("external_id", "id")
        )
        for item in changed:
            _sync_images(ids[item.external_id], item.image_urls)
        _sync_variants({ids[i.external_id]: i.variants for i in changed})
    return counts


def _write_products(store: Store, items: Sequence[ProductData], seen_at: datetime) -> None:
    if not items:
        return
    rows = [
        Product(
            store=store,
            external_id=i.external_id,
            first_seen_at=seen_at,
            last_seen_at=seen_at,
            is_active=True,
            content_hash=i.content_hash(),
            field_sources=dict(i.sources),
            **(
                {name: getattr(i, name) for name in (*PRODUCT_FIELDS, *IDENTITY_FIELDS)}
                | product_summary(i)
            ),
        )
        for i in items
    ]
    Product.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["store", "external_id"],
        update_fields=[
            *PRODUCT_FIELDS,
            *IDENTITY_FIELDS,
            "list_price",
            "price_max",
            "field_sources",
            "last_seen_at",
            "is_active",
            "content_hash",
            "updated_at",
        ],
    )


def _variant_key(variant: VariantData, position: int) -> str:
    # Pages without variant ids still name a SKU; failing that, the position is the identity.
    return (variant.external_id or variant.sku or f"#{position}")[:255]


def _sync_variants(variants_by_product: dict[int, list[VariantData]]) -> None:
    """Make the products' ProductVariant rows match the lists (order = position), in 4 queries.

    A variant's picture is linked when it is one of its product's images.
    """
    if not variants_by_product:
        return
    wanted: dict[tuple[int, str], tuple[int, VariantData]] = {}
    for product_id, variants in variants_by_product.items():
        for position, variant in enumerate(variants[:MAX_VARIANTS]):
            wanted[(product_id, _variant_key(variant, position))] = (position, variant)
    existing = ProductVariant.objects.filter(product_id__in=variants_by_product)
    stale = [
        pk
        for pk, product_id, ext in existing.values_list("pk", "product_id", "external_id")
        if (product_id, ext) not in wanted
    ]
    if stale:
        ProductVariant.objects.filter(pk__in=stale).delete()
    if not wanted:
        return
    images = {
        (product_id, url): pk
        for pk, product_id, url in ProductImage.objects.filter(
            product_id__in=variants_by_product
        ).values_list("pk", "product_id", "source_url")
    }
    rows = [
        ProductVariant(
            product_id=product_id,
            external_id=ext,
            position=position,
            image_id=images.get((product_id, variant.image_url)),
            **{name: getattr(variant, name) for name in VARIANT_FIELDS},
        )
        for (product_id, ext), (position, variant) in wanted.items()
    ]
    ProductVariant.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["product", "external_id"],
        update_fields=[*VARIANT_FIELDS, "position", "image", "updated_at"],
    )


def _sync_images(product_id: int, urls: Sequence[str]) -> None:
    """Make the product's ProductImage rows match `urls` (order = position); keeps known rows."""
    urls = list(dict.fromkeys(u for u in urls if u))[:20]
    current = {img.source_url: img for img in ProductImage.objects.filter(product_id=product_id)}
    ProductImage.objects.filter(product_id=product_id).exclude(source_url__in=urls).delete()
    new = [
        ProductImage(product_id=product_id, source_url=u, position=pos)
        for pos, u in enumerate(urls)
        if u not in current
    ]
    ProductImage.objects.bulk_create(new, ignore_conflicts=True)
    moved = []
    for pos, url in enumerate(urls):
        img = current.get(url)
        if img is not None and img.position != pos:
            img.position = pos
            moved.append(img)
    ProductImage.objects.bulk_update(moved, ["position"])


def touch_products(*, store: Store, external_ids: Iterable[str], seen_at: datetime) -> int:
    """Products a listing showed as unchanged (304, same hash): seen now, still active."""
    ids = list(set(external_ids))
    products = Product.objects.filter(store=store, external_id__in=ids)
    # Only a product coming back changes what search may show: it gets a new `updated_at`, which
    # is how the search side's snapshot and keyword index learn of changes since their build.
    # The rest keep theirs, or every unchanged listing would look "changed" to them.
    products.filter(is_active=False).update(
        last_seen_at=seen_at, is_active=True, updated_at=timezone.now()
    )
    return products.update(last_seen_at=seen_at)


def deactivate_missing_products(*, store: Store, seen_since: datetime) -> int:
    """Products not seen since `seen_since` left the store: inactive, never deleted."""
    return Product.objects.filter(store=store, is_active=True, last_seen_at__lt=seen_since).update(
        is_active=False, updated_at=timezone.now()
    )
