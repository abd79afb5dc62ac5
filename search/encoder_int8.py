"""int8 encoding: torch dynamic quantisation of the Linear layers, served only when a probe batch
(synthetic images and PROBE_TEXTS) encodes close enough to fp32: the parity gate that the ONNX
text tower (search.encoder_onnx) passes too.
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from search.encoder_model import ClipEncoder, _from_pretrained

if TYPE_CHECKING:
    from PIL import Image

# The encoder's one logger: log configuration and tests name "search.encoder".
logger = logging.getLogger("search.encoder")

# Texts the parity gate compares (with the probe images) against the fp32 encoder.
PROBE_TEXTS = (
    "a red leather handbag", "blue running shoes", "wooden dining table", "gold ring",
    "striped cotton cushion for the living room", "matte black desk lamp", "Navy linen shirt",
    "kids rain boots size 30",
)  # fmt: skip


def probe_size(processor) -> int:
    """The square input side of an image processor (CLIP's crop, SigLIP's resize), or 224."""
    image_processor = processor.image_processor
    for attr in ("crop_size", "size"):
        value = getattr(image_processor, attr, None) or {}
        side = value.get("height") or value.get("shortest_edge")
        if side:
            return int(side)
    patch = getattr(image_processor, "patch_size", None)
    patches = getattr(image_processor, "max_num_patches", None)
    return int(patch * patches**0.5) if patch and patches else 224


def _probe_images(size: int, n: int = 8) -> list[Image.Image]:
    from PIL import Image

    rng = np.random.default_rng(0)
    images = []
    for i in range(n):
        y, x = np.mgrid[0:size, 0:size] / size
        base = np.stack([np.sin(x * (i + 1) * 3), np.cos(y * (i + 2)), x * y], axis=-1)
        noisy = (base + 1) / 2 * 200 + rng.normal(0, 20, base.shape)
        images.append(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB"))
    return images


def _min_cosine(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    return float(np.min(np.sum(a * b, axis=1)))


def _int8_model(encoder: ClipEncoder):
    """A second copy of `encoder`'s model with its Linear layers dynamically quantised to int8."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        # torch.ao is deprecated in favour of torchao but is what ships with torch here.
        warnings.simplefilter("ignore", (DeprecationWarning, UserWarning))
        # Linear layers outside the embeddings: SigLIP 2 embeds patches with a Linear whose
        # weight dtype it reads, which a quantized layer no longer has. Exact type: attention
        # pooling heads hold a NonDynamicallyQuantizableLinear that must stay float.
        linears = {
            name: torch.ao.quantization.default_dynamic_qconfig
            for name, module in encoder.model.named_modules()
            if type(module) is torch.nn.Linear and "embedding" not in name
        }
        # A second copy of the weights, quantised in place: from_pretrained maps the file, so
        # only the int8 Linear weights become private memory. (quantize_dynamic's own copy,
        # inplace=False, deep-copies the whole float model into anonymous memory: +700 MB for
        # ViT-B/32 in the gunicorn master, counted in every worker's copy-on-write share.)
        qmodel, _ = _from_pretrained(encoder.model_name)
        return quantize_dynamic(qmodel.eval(), linears, dtype=torch.qint8, inplace=True)


def _quantized(encoder: ClipEncoder, reference: NDArray[np.float32], images, quantize: str):
    """The int8 encoder if it agrees with fp32 on the probe batch (or `quantize == "on"`), else
    the fp32 one (warning, and a note in `describe()`)."""
    if encoder.device != "cpu":
        logger.warning("MEEPO_CLIP_QUANTIZE applies to CPU only; using fp32 on %s", encoder.device)
        encoder.notes.append(f"int8 is CPU only; fp32 on {encoder.device}")
        return encoder
    qmodel = _int8_model(encoder)
    candidate = ClipEncoder(
        encoder.model_name, encoder.dim, "cpu", "int8", model=qmodel, processor=encoder.processor,
        quantize=quantize, parity_min=encoder.parity_min,
    )  # fmt: skip
    try:
        got = np.vstack([candidate.encode_images(images), candidate.encode_texts(PROBE_TEXTS)])
    except Exception:  # an architecture int8 does not fit: serving fp32 beats not serving
        logger.exception("int8 encoding failed for %s; using fp32", encoder.model_name)
        encoder.notes.append("int8 encoding failed")
        return encoder
    parity = _min_cosine(reference, got)
    candidate.parity = parity
    if parity < encoder.parity_min and quantize != "on":
        logger.warning(
            "int8 encoder disagrees with fp32 (min cosine %.4f < MEEPO_CLIP_PARITY_MIN %.4f); "
            "using fp32",
            parity,
            encoder.parity_min,
        )
        encoder.notes.append(f"int8 parity {parity:.4f} < {encoder.parity_min}: fp32")
        encoder.parity = parity
        return encoder
    if parity < encoder.parity_min:
        logger.warning("int8 forced (MEEPO_CLIP_QUANTIZE=on) at min cosine %.4f to fp32", parity)
    else:
        logger.info("int8 encoder enabled (min cosine to fp32 on the probe batch %.4f)", parity)
    return candidate
