"""Stage `attributes` (after `embed`): colour / pattern / material / type for every product.

Each active product's main image vector (its first non-shared image with a vector for
settings.MEEPO_CLIP_MODEL) is scored against the taxonomy's label vectors (`search.attributes`);
the confident labels and the top scores are stored in `catalog.ProductAttributes`.

Guarantees:
- No image forward pass: stored vectors are reused; the text tower runs once per model and
  taxonomy (cached label vectors), and only when something needs labelling.
- Incremental: a product is relabelled only when its main image, the model or the taxonomy
  changed (the row's `key` digests the three); `force` relabels everything.
- One transaction per chunk of products; a crash loses at most one chunk.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from catalog.models import ProductAttributes
from search.attributes import ATTRIBUTES, Taxonomy, classify, label_vectors, load_taxonomy
from search.models import Embedding

logger = logging.getLogger(__name__)

CHUNK = 1000


@dataclass
class AttributesReport:
    model: str
    taxonomy: str = ""
    candidates: int = 0  # products with a main image vector
    labelled: int = 0  # rows written
    unchanged: int = 0
    seconds: float = 0.0
    dry_run: bool = False

    def summary(self) -> str:
        verb = "to label" if self.dry_run else "labelled"
        return (
            f"attributes: {self.labelled} {verb}, {self.unchanged} unchanged of "
            f"{self.candidates} products with {self.model} ({self.taxonomy}) "
            f"in {self.seconds:.1f} s"
        )


def _main_images(model: str, store: str | None) -> dict[int, tuple[str, int]]:
    """{product id: (asset sha256, asset id)} of each active product's first image that has a
    vector for `model` (vectors themselves are read per chunk: 2 KB each adds up)."""
    where, params = ["p.is_active", "NOT i.is_shared", "e.model_name = %s"], [model]
    if store:
        where.append("p.store_id IN (SELECT id FROM catalog_store WHERE slug = %s)")
        params.append(store)
    sql = (
        "SELECT i.product_id, a.sha256, a.id FROM catalog_productimage i "
        "JOIN catalog_product p ON p.id = i.product_id "
        "JOIN catalog_imageasset a ON a.id = i.asset_id "
        "JOIN search_embedding e ON e.asset_id = a.id "
        f"WHERE {' AND '.join(where)} ORDER BY i.product_id, i.position, i.id"
    )
    found: dict[int, tuple[str, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for product_id, sha, asset_id in cursor.fetchall():
            found.setdefault(product_id, (sha, asset_id))
    return found


def _vectors(model: str, asset_ids: list[int]) -> dict[int, np.ndarray]:
    rows = Embedding.objects.filter(model_name=model, asset_id__in=asset_ids).values_list(
        "asset_id", "vector", "dim"
    )
    return {pk: Embedding.unpack(v, d) for pk, v, d in rows}


def _key(model: str, taxonomy: Taxonomy, sha: str) -> str:
    return hashlib.sha256(f"{model}|{taxonomy.digest}|{sha}".encode()).hexdigest()


def _rows(model, taxonomy, labels, chunk) -> list[ProductAttributes]:
    by_asset = _vectors(model, [asset_id for _, (_, asset_id) in chunk])
    vectors = np.stack([by_asset[asset_id] for _, (_, asset_id) in chunk]).astype(np.float32)
    fields = {
        name: classify(vectors, labels[name], top_k=spec.top_k, min_confidence=spec.min_confidence)
        for name, spec in taxonomy.attributes.items()
    }
    rows = []
    for i, (product_id, (sha, _)) in enumerate(chunk):
        values = {name: fields[name][i][0] if name in fields else "" for name in ATTRIBUTES}
        rows.append(
            ProductAttributes(
                product_id=product_id,
                scores={name: fields[name][i][1] for name in fields},
                model_name=model,
                key=_key(model, taxonomy, sha),
                **values,
            )
        )
    return rows


def assign_attributes(
    *,
    force: bool = False,
    dry_run: bool = False,
    store: str | None = None,
    limit: int | None = None,
    taxonomy: Taxonomy | None = None,
) -> AttributesReport:
    """Label every product whose image, model or taxonomy changed since it was last labelled."""
    started = time.monotonic()
    model = settings.MEEPO_CLIP_MODEL
    taxonomy = taxonomy or load_taxonomy()
    report = AttributesReport(model=model, taxonomy=taxonomy.source, dry_run=dry_run)
    mains = _main_images(model, store)
    report.candidates = len(mains)
    keys = dict(ProductAttributes.objects.values_list("product_id", "key"))
    todo = [
        (pid, main)
        for pid, main in mains.items()
        if force or keys.get(pid) != _key(model, taxonomy, main[0])
    ][:limit]
    report.unchanged = report.candidates - len(todo)
    if dry_run or not todo:
        report.labelled = len(todo)
        report.seconds = time.monotonic() - started
        return report
    labels = label_vectors(taxonomy)
    for start in range(0, len(todo), CHUNK):
        rows = _rows(model, taxonomy, labels, todo[start : start + CHUNK])
        with transaction.atomic():
            ProductAttributes.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["product"],
                update_fields=[*ATTRIBUTES, "scores", "model_name", "key", "updated_at"],
            )
        report.labelled += len(rows)
    report.seconds = time.monotonic() - started
    return report
