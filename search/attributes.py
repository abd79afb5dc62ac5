"""Zero-shot attributes: colour, pattern, material and product type from image vectors.

The taxonomy (YAML: `MEEPO_ATTRIBUTE_TAXONOMY`, else `MEEPO_DATA_DIR/taxonomy.yaml`, else the
default shipped in `search/data/taxonomy.yaml`) lists labels per attribute; each label's text
vector is the mean of its prompt ensemble ("a photo of a {} product" x its words), computed once
per model and taxonomy and cached under `MEEPO_DATA_DIR/attributes/`. An image's confidence for
a label is the model's own calibrated score: SigLIP's sigmoid(scale * cos + bias) per label, or
CLIP's softmax(scale * cos) over the attribute's labels. No image forward pass: the stored image
vectors are reused.

Pure functions plus one cache file; the pipeline stage that writes results is
`pipeline/attributes.py`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

DEFAULT_TAXONOMY = Path(__file__).resolve().parent / "data" / "taxonomy.yaml"
# Attribute names the catalogue stores (catalog.ProductAttributes fields) and filters by.
ATTRIBUTES = ("colour", "pattern", "material", "product_type")


class TaxonomyError(ValueError):
    """A taxonomy file that cannot be used (the message says which part)."""


@dataclass(frozen=True)
class AttributeSpec:
    name: str
    templates: tuple[str, ...]
    labels: dict[str, tuple[str, ...]]  # slug -> words
    min_confidence: float
    top_k: int

    def prompts(self, label: str) -> list[str]:
        return [t.format(word) for word in self.labels[label] for t in self.templates]


@dataclass(frozen=True)
class Taxonomy:
    attributes: dict[str, AttributeSpec]
    digest: str  # of the parsed content: any change relabels every product
    source: str

    def display(self, attribute: str, label: str) -> str:
        """A label as shoppers read it: its first word ("navy blue" for navy)."""
        words = self.attributes[attribute].labels.get(label)
        return words[0].capitalize() if words else label


def taxonomy_path() -> Path:
    configured = settings.MEEPO_ATTRIBUTE_TAXONOMY
    if configured:
        return Path(configured)
    local = Path(settings.MEEPO_DATA_DIR) / "taxonomy.yaml"
    return local if local.is_file() else DEFAULT_TAXONOMY


def _spec(name: str, raw: Any) -> AttributeSpec:
    if name not in ATTRIBUTES:
        raise TaxonomyError(f"unknown attribute {name!r}; use {', '.join(ATTRIBUTES)}")
    if not isinstance(raw, dict) or not isinstance(raw.get("labels"), dict) or not raw["labels"]:
        raise TaxonomyError(f"{name}: needs a non-empty `labels` mapping")
    templates = tuple(raw.get("templates") or ("a photo of a {} product",))
    if not all(isinstance(t, str) and "{}" in t for t in templates):
        raise TaxonomyError(f"{name}: every template needs one {{}}")
    labels = {}
    for slug, words in raw["labels"].items():
        words = [words] if isinstance(words, str) else words
        if not words or not all(isinstance(w, str) and w.strip() for w in words):
            raise TaxonomyError(f"{name}.{slug}: needs one or more words")
        labels[str(slug)] = tuple(w.strip() for w in words)
    return AttributeSpec(
        name=name,
        templates=templates,
        labels=labels,
        min_confidence=float(raw.get("min_confidence", 0.35)),
        top_k=max(1, int(raw.get("top_k", 3))),
    )


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """The taxonomy at `path` (default: `taxonomy_path()`); raises TaxonomyError when unusable."""
    import yaml

    path = Path(path) if path else taxonomy_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TaxonomyError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("attributes"), dict):
        raise TaxonomyError(f"{path}: needs an `attributes` mapping")
    specs = {name: _spec(name, raw) for name, raw in data["attributes"].items()}
    canonical = json.dumps(
        {n: [s.templates, s.labels, s.min_confidence, s.top_k] for n, s in specs.items()},
        sort_keys=True,
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return Taxonomy(attributes=specs, digest=digest, source=str(path))


@dataclass(frozen=True)
class LabelVectors:
    """Unit text vectors of one attribute's labels and how the model turns cosines into scores."""

    labels: tuple[str, ...]
    vectors: NDArray[np.float32]  # (labels, dim)
    scale: float
    bias: float | None  # SigLIP's sigmoid bias; None means softmax over labels (CLIP)

    def confidences(self, images: NDArray[np.float32]) -> NDArray[np.float32]:
        """(n, labels) calibrated confidences for (n, dim) unit image vectors."""
        logits = self.scale * (np.atleast_2d(images) @ self.vectors.T)
        if self.bias is not None:
            return (1.0 / (1.0 + np.exp(-(logits + self.bias)))).astype(np.float32)
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def _logit_calibration(model) -> tuple[float, float | None]:
    """The model's learnt temperature (and SigLIP's bias), as its own zero-shot head uses them."""
    scale = float(model.logit_scale.detach().exp()) if hasattr(model, "logit_scale") else 100.0
    bias = getattr(model, "logit_bias", None)
    return scale, None if bias is None else float(bias.detach())


def compute_label_vectors(taxonomy: Taxonomy, encoder) -> dict[str, LabelVectors]:
    """Prompt-ensemble vectors for every label: the mean of its prompts' unit vectors."""
    scale, bias = _logit_calibration(encoder.model)
    result = {}
    for name, spec in taxonomy.attributes.items():
        rows = []
        for label in spec.labels:
            mean = encoder.encode_texts(spec.prompts(label)).mean(axis=0)
            rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        result[name] = LabelVectors(
            tuple(spec.labels), np.stack(rows).astype(np.float32), scale, bias
        )
    return result


def _cache_file(model_name: str, taxonomy: Taxonomy) -> Path:
    digest = hashlib.sha256(f"{model_name}|{taxonomy.digest}".encode()).hexdigest()[:20]
    return Path(settings.MEEPO_DATA_DIR) / "attributes" / f"labels-{digest}.npz"


def label_vectors(taxonomy: Taxonomy, *, encoder=None) -> dict[str, LabelVectors]:
    """Label vectors for the current model, from the cache or computed once and cached."""
    path = _cache_file(settings.MEEPO_CLIP_MODEL, taxonomy)
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return {
                name: LabelVectors(tuple(m["labels"]), data[name], m["scale"], m["bias"])
                for name, m in meta.items()
            }
    if encoder is None:
        from search.encoder import get_encoder

        encoder = get_encoder()
    vectors = compute_label_vectors(taxonomy, encoder)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        n: {"labels": list(v.labels), "scale": v.scale, "bias": v.bias} for n, v in vectors.items()
    }
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, meta=json.dumps(meta), **{n: v.vectors for n, v in vectors.items()})
    tmp.replace(path)  # atomic: a concurrent reader sees the old file or the whole new one
    return vectors


def classify(
    images: NDArray[np.float32], labels: LabelVectors, *, top_k: int, min_confidence: float
) -> list[tuple[str, list[tuple[str, float]]]]:
    """Per image: (chosen label or "", its top_k labels with confidences, best first)."""
    conf = labels.confidences(images)
    order = np.argsort(-conf, axis=1, kind="stable")[:, :top_k]
    result = []
    for row, idx in zip(conf, order, strict=True):
        top = [(labels.labels[i], round(float(row[i]), 4)) for i in idx]
        result.append((top[0][0] if top[0][1] >= min_confidence else "", top))
    return result


@functools.lru_cache(maxsize=4)
def cached_taxonomy(path: str, mtime: float) -> Taxonomy:
    """The taxonomy file at `path`, loaded once per version of it (its mtime)."""
    return load_taxonomy(path)


def current_taxonomy() -> Taxonomy:
    """The taxonomy in use (raises OSError or TaxonomyError when it cannot be read)."""
    path = taxonomy_path()
    return cached_taxonomy(str(path), path.stat().st_mtime)


def display_label(attribute: str, label: str) -> str:
    """A stored label as shoppers read it ("Navy blue"), from the taxonomy in use."""
    try:
        return current_taxonomy().display(attribute, label)
    except (OSError, TaxonomyError, KeyError):
        return label.replace("-", " ").capitalize()


ATTRIBUTE_NAMES = {
    "colour": "Colour",
    "pattern": "Pattern",
    "material": "Material",
    "product_type": "Type",
}


def describe_attributes(product) -> list[dict[str, Any]]:
    """The product's confident zero-shot labels for its page: each with the filter that finds
    other products like it (`?colour=navy`) and the confidence in percent."""
    from django.core.exceptions import ObjectDoesNotExist

    try:
        row = product.attributes
    except ObjectDoesNotExist:
        return []
    looks = []
    for name in ATTRIBUTES:
        value = getattr(row, name)
        if value:
            top = dict((label, score) for label, score in row.scores.get(name, []))
            looks.append(
                {
                    "attribute": ATTRIBUTE_NAMES[name],
                    "param": name,
                    "value": value,
                    "label": display_label(name, value),
                    "confidence": 100 * float(top.get(value, 0.0)),
                }
            )
    return looks


def query_attributes(query: str) -> dict[str, set[str]] | None:
    """{attribute: labels} when every word of `query` names an attribute label of the taxonomy
    ("navy", "striped linen", "navy blue"), else None: only such queries are answered by the
    labels alone ("navy shirt" is left to the keyword and visual signals)."""
    import re

    from search.selectors import STOPWORDS

    words = [w for w in re.findall(r"\w+", query.lower()) if w not in STOPWORDS]
    if not words or len(words) > 4:
        return None
    try:
        taxonomy = current_taxonomy()
    except (OSError, TaxonomyError):
        return None
    text = " ".join(words)
    found: dict[str, set[str]] = {}
    covered: set[str] = set()
    for name, spec in taxonomy.attributes.items():
        for label, names in spec.labels.items():
            for phrase in {*names, label.replace("-", " ")}:
                phrase = phrase.lower()
                if re.search(rf"\b{re.escape(phrase)}\b", text):
                    found.setdefault(name, set()).add(label)
                    covered.update(phrase.split())
    return found if found and covered >= set(words) else None


def attribute_match_ids(*, query: str, filters, limit: int) -> list[int]:
    """Active products passing `filters` whose labels are what the query names (newest first);
    [] unless the whole query is attribute words (see `query_attributes`)."""
    wanted = query_attributes(query)
    if not wanted:
        return []
    qs = filters.queryset()
    for name, labels in wanted.items():
        qs = qs.filter(**{f"attributes__{name}__in": sorted(labels)})
    return list(qs.order_by("-last_seen_at", "-pk").values_list("pk", flat=True)[:limit])
