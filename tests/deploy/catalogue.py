"""A synthetic catalogue for load and zero-downtime runs: products with searchable titles, one
image each, and stored embeddings (clustered random unit vectors) for the configured model, so
`build_index` can publish an index without running CLIP over N images. Optionally some images
carry a real thumbnail file and no embedding, so `embed` has real work to do.

Models are imported inside the functions so `queries()` works before Django is set up.
Run inside a configured Django process, e.g.
    manage.py shell -c "from tests.deploy.catalogue import add_products; add_products(1000)"
"""

from __future__ import annotations

import hashlib
import io
import itertools
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

COLOURS = ["red", "blue", "green", "black", "white", "striped", "yellow", "pink", "grey", "navy",
           "salmon", "golden", "wooden", "leather", "fluffy", "linen", "velvet", "denim"]  # fmt: skip
THINGS = ["chair", "lamp", "pillow", "shirt", "dress", "sneaker", "mug", "table", "sofa", "rug",
          "jacket", "handbag", "fork", "vase", "scarf", "boot", "clock", "blanket", "desk", "hat"]  # fmt: skip
STYLES = ["modern", "vintage", "classic", "cozy", "minimal", "rustic", "sporty", "elegant"]
BATCH = 5_000


def queries() -> list[str]:
    """Every two-word query the catalogue can answer: what the load generators send."""
    return [f"{c} {t}" for c, t in itertools.product(COLOURS, THINGS)]


def add_products(n: int, *, with_thumbnails: int = 0, seed: int | None = None) -> int:
    """Add n products (one image each) to the "synthetic" store; the last `with_thumbnails` of
    them get a real JPEG thumbnail and no embedding (work for `embed`). Returns the store's size."""
    from catalog.models import Product, Store

    model, dim = settings.MEEPO_CLIP_MODEL, _model_dim()
    store, _ = Store.objects.get_or_create(slug="synthetic", defaults={"name": "Synthetic", "base_url": "https://synthetic.example"})  # fmt: skip
    rng = np.random.default_rng(seed if seed is not None else time.time_ns() % 2**32)
    centres = _unit(np.random.default_rng(0).normal(size=(256, dim)).astype(np.float32))
    start = Product.objects.filter(store=store).count()
    with_vectors = n - with_thumbnails
    for first in range(0, n, BATCH):
        count = min(BATCH, n - first)
        numbers = range(start + first, start + first + count)
        embed = [first + i < with_vectors for i in range(count)]
        with transaction.atomic():
            _add_batch(store, numbers, embed, rng, centres, model, dim)
    return Product.objects.filter(store=store).count()


def _add_batch(store, numbers, embed, rng, centres, model, dim) -> None:
    from catalog.models import ImageAsset, Product, ProductImage
    from search.models import Embedding

    now = timezone.now()
    products = Product.objects.bulk_create([_product(store, i, now, rng) for i in numbers])
    assets = ImageAsset.objects.bulk_create(
        [_asset(p.external_id, thumb=not e) for p, e in zip(products, embed, strict=True)]
    )
    ProductImage.objects.bulk_create(
        ProductImage(product=p, source_url=f"{p.url}.jpg", asset=a, fetch_status="ok", last_fetched_at=now)
        for p, a in zip(products, assets, strict=True)
    )  # fmt: skip
    picked = centres[rng.integers(0, len(centres), len(assets))]
    vectors = _unit(
        picked + rng.normal(scale=0.35, size=picked.shape).astype(np.float32) / np.sqrt(dim) * 4
    )
    Embedding.objects.bulk_create(
        Embedding(asset=a, model_name=model, dim=dim, vector=v.astype(np.float32).tobytes())
        for a, v, e in zip(assets, vectors, embed, strict=True)
        if e
    )


def _product(store, i, now, rng):
    from catalog.models import Product

    colour, thing, style = COLOURS[rng.integers(len(COLOURS))], THINGS[rng.integers(len(THINGS))], STYLES[rng.integers(len(STYLES))]  # fmt: skip
    return Product(
        store=store, external_id=f"syn-{i}", url=f"https://synthetic.example/p/{i}",
        title=f"{style.title()} {colour} {thing} no. {i}", brand=f"Brand {i % 97}",
        category=thing, description=f"A {style} {colour} {thing}.", price=5 + i % 300,
        currency="EUR", availability="in_stock", first_seen_at=now, last_seen_at=now,
    )  # fmt: skip


def _asset(key: str, *, thumb: bool):
    from catalog.models import ImageAsset

    sha = hashlib.sha256(f"{key}-{time.time_ns()}".encode()).hexdigest()
    name = ""
    if thumb:
        name = f"thumbs/{sha[:2]}/{sha[2:4]}/{sha}.jpg"
        path = Path(settings.MEDIA_ROOT) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_jpeg(sha))
    return ImageAsset(
        sha256=sha, width=64, height=64, format="JPEG", byte_size=1000, thumbnail=name
    )


def _jpeg(sha: str) -> bytes:
    from PIL import Image

    colour = tuple(int(sha[i : i + 2], 16) for i in (0, 2, 4))
    out = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(out, "JPEG")
    return out.getvalue()


def _model_dim() -> int:
    from transformers import CLIPConfig

    return int(CLIPConfig.from_pretrained(settings.MEEPO_CLIP_MODEL).projection_dim)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
