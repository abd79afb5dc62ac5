"""int8 encoding: torch dynamic quantisation of the Linear layers, served only when a probe batch
(synthetic images and PROBE_TEXTS) encodes close enough to fp32: the parity gate that the ONNX
text tower (search.encoder_onnx) passes too.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from search.encoder_model import ClipEncoder, _from_pretrained
from search.encoder_tokens import CHECK_TEXTS

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


# --- ONNX Runtime int8 for the exported text tower (search.encoder_onnx) ---

# Static quantisation's activation scales are fixed here, once, from these texts: product-like
# phrases of many lengths (built, not sampled: the same file on every machine) and the tokenizer's
# check texts (odd scripts, emoji, the empty text, one truncated at the model's length). The
# parity gate's PROBE_TEXTS are left out so the gate measures texts the scales never saw.
_COLOURS = ("red", "navy", "black", "white", "olive green", "pastel pink", "grey", "mustard")
_MATERIALS = ("leather", "linen", "oak", "stainless steel", "wool")
_THINGS = (
    "armchair", "sneakers", "table lamp", "backpack", "dress", "coffee mug", "rug",
    "bookshelf", "sunglasses", "bed sheets", "watch", "vase",
)  # fmt: skip
_EXTRAS = ("", "for kids", "size 42", "set of 2, 30 x 40 cm", "vintage style with brass handles for the hallway")  # fmt: skip
CALIBRATION_TEXTS = tuple(
    " ".join(filter(None, (_COLOURS[i % 8], _MATERIALS[i % 5], _THINGS[i % 12], _EXTRAS[i % 5])))
    for i in range(48)
)

# `MEEPO_CLIP_ONNX_INT8`: how ONNX Runtime quantises the text tower's activations.
ONNX_INT8_SCHEMES = ("static", "dynamic")


def onnx_int8_scheme() -> str:
    """`static` (default): activation scales calibrated once at export, so a query's vector is
    the same alone and in any coalesced pass (integer arithmetic per row, fixed scales; CPU as
    dynamic's, bench.onnx_text). `dynamic`: scales measured on each pass's whole batch, so a
    query's vector moves slightly with its company (min cosine 0.9995), parity a hair higher."""
    from django.conf import settings

    value = getattr(settings, "MEEPO_CLIP_ONNX_INT8", None) or os.environ.get("MEEPO_CLIP_ONNX_INT8", "static")  # fmt: skip
    value = str(value).strip().lower()
    if value not in ONNX_INT8_SCHEMES:
        logger.warning("MEEPO_CLIP_ONNX_INT8=%r is not static or dynamic; using static", value)
        return "static"
    return value


def quantize_onnx_text(fp32: Path, out: Path, names: Sequence[str], token_arrays, scheme: str) -> None:  # fmt: skip
    """Write `fp32`'s int8 copy to `out`: `quantize_dynamic`'s (int8 weights per tensor, only
    the MatMuls by a constant), and for `static` each activation's DynamicQuantizeLinear then
    replaced by a QuantizeLinear with fixed uint8 scales (MinMax over CALIBRATION_TEXTS, one
    text per pass: padding never in the ranges) and its MatMulInteger + Cast + Mul chain by one
    MatMulIntegerToFloat (the kernel ORT fuses dynamic's into; ORT's own fusion misses it once
    the scales are constants). Why not `quantize_static`: its QOperator graph also requantises
    every MatMul's output (parity 0.9984 vs 0.9991, 7-9% more CPU), its QDQ graph runs 1.7-4x
    slower here (not fused)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # it logs every tensor it skips on the root logger
    try:
        quantize_dynamic(fp32, out, weight_type=QuantType.QInt8)
    finally:
        logging.disable(previous)
    if scheme == "static":
        import onnx

        model = onnx.load(str(out))
        texts = CALIBRATION_TEXTS + CHECK_TEXTS
        feeds = ({n: token_arrays([text])[n] for n in names} for text in texts)
        _fix_activation_scales(model, feeds)
        _fuse_matmuls(model)
        onnx.save(model, str(out))


def _fix_activation_scales(model, feeds) -> None:
    """Every DynamicQuantizeLinear in `model` becomes a QuantizeLinear whose scale and zero
    point cover its input's range over `feeds` (and 0, as DynamicQuantizeLinear's do)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    nodes = [n for n in model.graph.node if n.op_type == "DynamicQuantizeLinear"]
    names = list(dict.fromkeys(n.input[0] for n in nodes))
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(helper.make_tensor_value_info(x, TensorProto.FLOAT, None) for x in names)  # fmt: skip
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = 1, 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])  # fmt: skip
    low, high = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0.0)
    for feed in feeds:
        for name, value in zip(names, session.run(names, feed), strict=True):
            low[name] = min(low[name], float(value.min()))
            high[name] = max(high[name], float(value.max()))
    for node in nodes:
        x, (_, scale_name, zero_name) = node.input[0], node.output
        scale = np.float32((high[x] - low[x]) / 255 or 1.0)
        zero = np.uint8(np.clip(np.round(-low[x] / scale), 0, 255))
        model.graph.initializer.extend([numpy_helper.from_array(np.array(scale), scale_name), numpy_helper.from_array(np.array(zero), zero_name)])  # fmt: skip
        node.op_type = "QuantizeLinear"
        node.input.extend([scale_name, zero_name])
        del node.output[1:]


def _fuse_matmuls(model) -> None:
    """MatMulInteger -> Cast -> Mul(a_scale * b_scale) [-> Add(bias)] as one MatMulIntegerToFloat."""
    from onnx import helper

    from search.encoder_graph import node_links

    graph = model.graph
    producer, consumers = node_links(graph)
    biases = {i.name for i in graph.initializer if len(i.dims) == 1}
    drop, fused = set(), {}
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        chain = _single_chain(node, consumers, producer)
        if chain is None:  # another layout: left unfused, as correct, a little slower
            continue
        cast, mul, scales = chain
        a, b, a_zero, b_zero = node.input
        inputs, out = [a, b, scales.input[0], scales.input[1], a_zero, b_zero], mul.output[0]
        after = consumers.get(out, [])
        if len(after) == 1 and after[0].op_type == "Add":
            bias = [_through_identity(name, producer) for name in after[0].input if name != out]
            if len(bias) == 1 and bias[0] in biases:
                inputs, out = [*inputs, bias[0]], after[0].output[0]
                drop.add(id(after[0]))
        fused[id(node)] = helper.make_node("MatMulIntegerToFloat", inputs, [out], name=f"{node.name}_float", domain="com.microsoft")  # fmt: skip
        drop.update({id(cast), id(mul)})
        if len(consumers[scales.output[0]]) == 1:
            drop.add(id(scales))
    nodes = [fused.get(id(n), n) for n in graph.node if id(n) not in drop]
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))


def _single_chain(node, consumers: dict, producer: dict):
    """(Cast, Mul, scales Mul) after a MatMulInteger, as quantize_dynamic writes it, or None."""
    after = consumers.get(node.output[0], [])
    if len(after) != 1 or after[0].op_type != "Cast":
        return None
    cast = after[0]
    after = consumers.get(cast.output[0], [])
    if len(after) != 1 or after[0].op_type != "Mul":
        return None
    mul = after[0]
    scales = producer.get(mul.input[1])
    if scales is None or scales.op_type != "Mul" or mul.input[0] != cast.output[0]:
        return None
    return cast, mul, scales


def _through_identity(name: str, producer: dict) -> str:
    """The tensor behind an Identity chain (torch.onnx.export routes some biases through one)."""
    while name in producer and producer[name].op_type == "Identity":
        name = producer[name].input[0]
    return name
