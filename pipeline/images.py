"""Download product images politely and store each distinct picture once.

`download_images` takes ProductImages that are pending (or failed, after a back-off of 1, 2, 4…
hours, at most 5 attempts), fetches them through the polite fetcher (identity encoding, image
content types only, size cap), decodes them safely (search.images.open_image: format allow-list,
bomb and truncation checks), and links them to an ImageAsset keyed by the sha256 of the bytes,
with a content-addressed thumbnail (MEDIA_ROOT/thumbs/ab/cd/<sha>.jpg) and a tiny placeholder.
A picture used by many products of one store (a size chart) is flagged `is_shared`.
Re-running is safe: downloaded images are never fetched again; one bad image is only counted.
A host that stops us (401/403, a 5xx robots.txt, an open circuit) stops only the images on that
host: they stay pending with the reason and are tried after never-tried images next run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from tqdm import tqdm

from catalog import selectors, services
from catalog.models import ImageAsset, ProductImage, Store
from pipeline.exceptions import FetchError
from pipeline.http import Fetcher, HostBlocked, RobotsUnavailable
from search.exceptions import UnsupportedImage
from search.images import THUMBNAIL_SIZE, make_placeholder, make_thumbnail, open_image

logger = logging.getLogger(__name__)
IMAGE_TYPES = ["image/"]


@dataclass
class ImageReport:
    downloaded: int = 0
    reused: int = 0  # same URL or same bytes as an image we already had: no new file
    failed: int = 0
    skipped: int = 0  # left pending (their host stopped us, dry run)
    shared: int = 0

    def merge(self, other: ImageReport) -> None:
        for name in ("downloaded", "reused", "failed", "skipped", "shared"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self) -> str:
        return (
            f"images: {self.downloaded} downloaded, {self.reused} reused, {self.failed} failed, "
            f"{self.skipped} skipped, {self.shared} shared"
        )


def thumbnail_name(sha256: str) -> str:
    return f"thumbs/{sha256[:2]}/{sha256[2:4]}/{sha256}.jpg"


def _write_once(name: str, data: bytes) -> None:
    path = Path(settings.MEDIA_ROOT) / name
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)  # readers never see half a thumbnail


def store_image(data: bytes) -> ImageAsset:
    """Decode, thumbnail and record `data`; the same bytes always give the same asset."""
    return store_image_once(data)[0]


def store_image_once(data: bytes) -> tuple[ImageAsset, bool]:
    """store_image, and whether these bytes were new (False: an asset already had them).

    One hash and one lookup tell a reused picture from a new one."""
    sha = hashlib.sha256(data).hexdigest()
    existing = ImageAsset.objects.filter(sha256=sha).first()
    if existing is not None:
        return existing, False
    # Decoded at reduced size (shorter side >= 2x the thumbnail's 512): a 40-megapixel JPEG costs
    # a 1/4-scale decode; width and height stay those of the picture as published.
    img = open_image(data, reduce_to=2 * THUMBNAIL_SIZE[0])
    width, height = img.info.get("source_size", img.size)
    name = thumbnail_name(sha)
    _write_once(name, make_thumbnail(img))
    asset = services.get_or_create_asset(
        sha256=sha,
        width=width,
        height=height,
        format=img.format or "",
        byte_size=len(data),
        thumbnail_name=name,
        placeholder=make_placeholder(img),
    )
    return asset, True


def _download_one(fetcher: Fetcher, image: ProductImage) -> str:
    """'downloaded' | 'reused' | 'failed'; raises only for errors that stop the whole host."""
    twin = (
        ProductImage.objects.filter(
            source_url=image.source_url,
            fetch_status=ProductImage.FetchStatus.OK,
            asset__isnull=False,
        )
        .exclude(pk=image.pk)
        .select_related("asset")
        .first()
    )
    if twin is not None:  # the same URL elsewhere in the catalogue: URLs with ?v= are immutable
        services.mark_image_downloaded(image=image, asset=twin.asset)
        return "reused"
    try:
        result = fetcher.get(image.source_url, kind="image", accept_types=IMAGE_TYPES)
        asset, created = store_image_once(result.body)
    except (HostBlocked, RobotsUnavailable):
        raise
    except (FetchError, UnsupportedImage) as exc:
        logger.warning("image %s of product %s failed: %s", image.pk, image.product_id, exc)
        services.mark_image_failed(image=image, reason=str(exc))
        return "failed"
    services.mark_image_downloaded(image=image, asset=asset)
    return "downloaded" if created else "reused"


def _retry_order(image: ProductImage) -> tuple:
    """Never-tried images first, then the longest-waiting: an image whose host stopped us last
    run (left pending with `last_fetched_at` set) no longer goes first and starves the rest."""
    tried = image.last_fetched_at
    return (
        tried is not None,
        tried.timestamp() if tried else 0.0,
        image.product_id,
        image.position,
    )


def _download_store(
    store: Store, images: list[ProductImage], fetcher: Fetcher | None
) -> ImageReport:
    """Download a store's due images. A host that stops us (401/403, a 5xx robots.txt, an open
    circuit, a long Retry-After) stops only the images on that host; they stay pending with the
    reason, and every other host's images are still fetched."""
    report = ImageReport()
    own = fetcher is None
    fetcher = fetcher or Fetcher(delay=store.crawl_delay)
    blocked: dict[str, str] = {}  # image host -> why it stopped us
    deferred: dict[str, list[int]] = {}
    try:
        for image in tqdm(
            sorted(images, key=_retry_order), desc=f"images {store.slug}", disable=None, leave=False
        ):
            host = _image_host(image.source_url)
            if host not in blocked:
                try:
                    outcome = _download_one(fetcher, image)
                except (HostBlocked, RobotsUnavailable) as exc:
                    blocked[host] = f"waiting: image host {host} stopped us: {exc}"
                    logger.warning("store %s: images from %s stopped: %s", store.slug, host, exc)
                else:
                    setattr(report, outcome, getattr(report, outcome) + 1)
                    continue
            deferred.setdefault(host, []).append(image.pk)
            report.skipped += 1
    finally:
        if own:
            fetcher.close()
    for host, ids in deferred.items():
        services.defer_images(image_ids=ids, reason=blocked[host])
    report.shared = services.flag_shared_images(
        store=store, min_products=settings.MEEPO_SHARED_IMAGE_MIN_PRODUCTS
    )
    return report


def _image_host(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


def download_images(
    *,
    store_slug: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    retry_failed: bool = True,
    fetcher: Fetcher | None = None,
) -> ImageReport:
    """Fetch due images (see module doc). `fetcher` lets a scrape reuse its host state."""
    images = list(
        selectors.images_to_download(
            store_slug=store_slug, now=timezone.now(), retry_failed=retry_failed, limit=limit
        )
    )
    report = ImageReport()
    if dry_run:
        report.skipped = len(images)
        return report
    for _store_id, group in groupby(images, key=lambda im: im.product.store_id):
        batch = list(group)
        report.merge(_download_store(batch[0].product.store, batch, fetcher))
    if store_slug and not images:
        store = Store.objects.filter(slug=store_slug).first()
        if store is not None:
            report.shared = services.flag_shared_images(
                store=store, min_products=settings.MEEPO_SHARED_IMAGE_MIN_PRODUCTS
            )
    return report
