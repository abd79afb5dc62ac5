"""Catalogue writes. The pipeline calls these; the admin and commands never write around them.

Upserts rely on the database's unique constraints (INSERT ... ON CONFLICT DO UPDATE), so a
re-run or a duplicate in a listing cannot create a second product or a second stored image.
Each function is one short transaction (a listing page, one image), never a whole crawl, so the
site keeps reading while the pipeline writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from catalog.models import (
    CrawlRun,
    FetchState,
    ImageAsset,
    Product,
    ProductImage,
    ProductVariant,
    Store,
    amount_text,
    combined_availability,
)

PRODUCT_FIELDS = (
    "url",
    "title",
    "description",
    "brand",
    "category",
    "tags",
    "price",
    "currency",
    "availability",
)
# Written as the pipeline gives them (price, availability and the range are derived, see
# _product_row); all of them, the variants and the sources are covered by the content hash.
IDENTITY_FIELDS = ("sku", "gtin", "mpn")
VARIANT_FIELDS = (
    "title",
    "options",
    "sku",
    "gtin",
    "mpn",
    "price",
    "list_price",
    "availability",
    "image_url",
    "url",
)
MAX_VARIANTS = 250  # Shopify's old cap; a product listing thousands is a catalogue, not a product
MAX_RUN_ERRORS = 50


@dataclass
class VariantData:
    """One purchasable variant (a colour, a size) of a product, as the store lists it.

    Prices are Decimal selling prices; `list_price` is the regular price struck through when the
    variant is on sale (None otherwise). `options` maps option names to values
    ({"Colour": "Red", "Size": "M"}); `url` is the variant's own link (`?variant=…`) or "".
    """

    external_id: str
    title: str = ""
    options: dict[str, str] = field(default_factory=dict)
    sku: str = ""
    gtin: str = ""
    mpn: str = ""
    price: Decimal | None = None
    list_price: Decimal | None = None
    availability: str = "unknown"
    image_url: str = ""
    url: str = ""


@dataclass
class ProductData:
    """One product as a store lists it, already normalised by the pipeline.

    Issue 9 contract: `sku`/`gtin`/`mpn` identify the product (gtin: digits only, check digit
    valid, GTIN-8 kept, UPC-A/EAN-13 as 13 digits, GTIN-14 as 14); `price` is the selling price
    (the lowest variant price when variants differ), `list_price` the regular price when on sale;
    `variants` the purchasable variants; `sources` maps a field name ("price", "currency",
    "availability", "title", "image_urls", "sku", "gtin", …) to where it was read:
    "api", "json-ld", "microdata", "opengraph", "meta" or "visible-text".
    """

    external_id: str
    url: str
    title: str
    description: str = ""
    brand: str = ""
    category: str = ""
    tags: list[str] = field(default_factory=list)
    price: Decimal | None = None
    currency: str = ""
    availability: str = Product.Availability.UNKNOWN
    image_urls: list[str] = field(default_factory=list)
    sku: str = ""
    gtin: str = ""
    mpn: str = ""
    list_price: Decimal | None = None
    variants: list[VariantData] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def content_hash(self) -> str:
        """Changes when anything stored from this item would change; equal data, equal hash."""
        data = {name: getattr(self, name) for name in (*PRODUCT_FIELDS, "image_urls")}
        data["price"] = _money(self.price)
        if self.sku or self.gtin or self.mpn or self.list_price is not None:
            data |= {name: getattr(self, name) for name in IDENTITY_FIELDS}
            data["list_price"] = _money(self.list_price)
        if self.variants:
            data["variants"] = [
                {name: _money(v) if isinstance(v, Decimal) else v for name, v in vars(var).items()}
                for var in self.variants
            ]
        if self.sources:
            data["sources"] = self.sources
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _money(value: Decimal | None) -> str | None:
    # Two decimals as hashes always had (stored hashes stay valid); three when a currency has
    # them (KWD 12.345), so a change in the third decimal is a change.
    return amount_text(value)


def product_summary(item: ProductData) -> dict:
    """Price, price range, list price and availability of an item, variants considered.

    The product's price is its lowest variant price (the pipeline's, when it gives one);
    `price_max` the highest when variants differ; "in stock" when any variant is
    (`catalog.models.combined_availability`); the list price of the cheapest variant on sale
    when the item states none itself.
    """
    priced = [v for v in item.variants if v.price is not None]
    price = item.price
    price_max = None
    list_price = item.list_price
    if priced:
        cheapest = min(priced, key=lambda v: v.price)
        price = cheapest.price if price is None else price
        highest = max(v.price for v in priced)
        price_max = highest if highest > price else None
        if list_price is None and cheapest.price == price and cheapest.list_price is not None:
            list_price = cheapest.list_price
    if list_price is not None and (price is None or list_price <= price):
        list_price = None  # a "was" price that is not higher is no sale
    availability = item.availability
    known = [v.availability for v in item.variants if v.availability != "unknown"]
    if known:
        availability = combined_availability(known)
    return {
        "price": price,
        "price_max": price_max,
        "list_price": list_price,
        "availability": availability,
    }


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
    return Product.objects.filter(store=store, external_id__in=ids).update(
        last_seen_at=seen_at, is_active=True
    )


def deactivate_missing_products(*, store: Store, seen_since: datetime) -> int:
    """Products not seen since `seen_since` left the store: inactive, never deleted."""
    return Product.objects.filter(store=store, is_active=True, last_seen_at__lt=seen_since).update(
        is_active=False, updated_at=timezone.now()
    )


def record_fetch_states(*, store: Store, records: Iterable[dict], fetched_at: datetime) -> None:
    """Remember validators and listed items per URL (dicts with FetchState field names)."""
    rows = []
    for r in records:
        failed = bool(r.get("error"))
        rows.append(
            FetchState(
                store=store,
                url=r["url"][:2000],
                etag=r.get("etag", "")[:500],
                last_modified=r.get("last_modified", "")[:100],
                body_sha256=r.get("body_sha256", ""),
                status_code=r.get("status"),
                fetched_at=fetched_at,
                items=r.get("items", []),
                error=r.get("error", "")[:500],
                failures=1 if failed else 0,
            )
        )
    if not rows:
        return
    FetchState.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["store", "url"],
        update_fields=[
            "etag",
            "last_modified",
            "body_sha256",
            "status_code",
            "fetched_at",
            "items",
            "error",
            "failures",
            "updated_at",
        ],
    )


def start_crawl_run(*, store: Store) -> CrawlRun:
    return CrawlRun.objects.create(store=store, started_at=timezone.now())


def mark_interrupted_runs() -> int:
    """Runs still "running" when a scrape starts under the pipeline lock died with their process
    (kill -9, power cut): say so instead of leaving them running forever."""
    return CrawlRun.objects.filter(status=CrawlRun.Status.RUNNING).update(
        status=CrawlRun.Status.INTERRUPTED,
        finished_at=timezone.now(),
        errors=[{"url": "", "reason": "the process ended before the run finished"}],
        updated_at=timezone.now(),
    )


def finish_crawl_run(
    *, run: CrawlRun, status: str, errors: Sequence[dict], **counts: int
) -> CrawlRun:
    for name, value in counts.items():
        setattr(run, name, value)
    run.status = status
    run.errors = list(errors)[:MAX_RUN_ERRORS]
    run.finished_at = timezone.now()
    with transaction.atomic():
        run.save()
        if status in (CrawlRun.Status.SUCCEEDED, CrawlRun.Status.PARTIAL):
            Store.objects.filter(pk=run.store_id).update(last_crawled_at=run.finished_at)
    return run


def create_store(*, name: str, slug: str, base_url: str, platform: str, **extra: object) -> Store:
    store = Store(name=name, slug=slug, base_url=base_url, platform=platform, **extra)
    store.full_clean()
    store.save()
    return store


# --- images ---------------------------------------------------------------------------------


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


def pause_store(*, store: Store, until: datetime | None) -> None:
    """Remember (or clear) a site's request to be left alone until `until`."""
    Store.objects.filter(pk=store.pk).update(paused_until=until)
    store.paused_until = until
