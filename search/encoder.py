"""Image and text encoder, loaded once per process and shared by the pipeline and the site.

This module loads it (precision, text runtime, the per-process cache) and is the public API: the
encoder object is in search.encoder_model, int8 and the parity gate in search.encoder_int8, the
ONNX Runtime text tower in search.encoder_onnx; their public names are re-exported here. Patch a
name where it is defined (the gunicorn master sets `search.encoder_onnx.DEFER_ONNX`).

`MEEPO_CLIP_MODEL` names any Hugging Face image-text dual encoder that `AutoModel` loads and that
has `get_image_features` / `get_text_features`: CLIP, SigLIP, SigLIP 2 (multilingual tokenizer),
ChineseCLIP, AltCLIP. Preprocessing comes from the model's own processor (`AutoProcessor`), the
text length from its config, the embedding dimension from a probe at load time; only what the
families document differently is chosen here (`TEXT_PADDING`, `LOWERCASE_TEXT`).

Guarantees: vectors are float32, L2-normalised, and identical to what the reference
`model.get_*_features` + processor pipeline gives for the same inputs (the encoder uses that very
processor and model; text is tokenised by the processor's own `tokenizers` backend called
directly only where that gives the processor's exact ids, search.encoder_tokens; only the
batching and threading around them are ours). A model that cannot be loaded raises
`ModelNotAvailable` with what to do, never a transformers stack trace.

Concurrent text queries of one process share forward passes (search.batching). The ONNX int8
text tower's activation scales are fixed at export (static quantisation), so a query's vector is
the same alone and in any pass; torch int8 (no onnxruntime, or the ONNX file refused) and
`MEEPO_CLIP_ONNX_INT8=dynamic` quantise per batch, so there a vector moves slightly with its
company, which `MEEPO_CLIP_TEXT_COALESCE=false` rules out at some CPU per query.

Precision (`MEEPO_CLIP_QUANTIZE`): `auto` (the default) serves int8 (torch dynamic quantisation of
the Linear layers, CPU only) when its embeddings of a probe batch agree with fp32 (min cosine >=
`MEEPO_CLIP_PARITY_MIN`), else logs a warning and stays fp32; `on` serves int8 whatever the probe
says (the parity is still measured and reported); `off` is fp32. (`true`/`false` mean auto/off.)

Text tower runtime (`MEEPO_CLIP_TEXT_RUNTIME`): `auto` (the default) runs text queries through
ONNX Runtime (the text tower exported once with `torch.onnx.export`, int8 by
`onnxruntime.quantization.quantize_dynamic` with its activation scales then fixed from
calibration texts when the encoder is int8, search.encoder_int8; `MEEPO_CLIP_ONNX_INT8=dynamic`
keeps per-batch scales; cached per scheme under
MEEPO_DATA_DIR/cache/onnx) when onnxruntime is installed and the session passes the same parity
gate against the fp32 text tower, else torch; `onnx` tries it even when quantisation is off;
`torch` never. Images always go through torch. `ClipEncoder.describe()` says what is in use
(/healthz shows it).
"""

from __future__ import annotations

import functools

import numpy as np
from django.conf import settings
from numpy.typing import NDArray

# Re-exported: callers import the encoder's names from here.
from search.encoder_int8 import PROBE_TEXTS, _probe_images, _quantized, probe_size
from search.encoder_model import (
    LOWERCASE_TEXT,
    MAX_TEXT_CHARS,
    PARITY_MIN,
    TEXT_BATCH_MAX,
    TEXT_INPUTS,
    TEXT_PADDING,
    ClipEncoder,
    EncodedBatch,
    _from_pretrained,
    _resolve_device,
    max_text_tokens,
)
from search.encoder_onnx import (
    ONNX_RECIPE,
    _with_onnx_text,
    activate_text_runtime,
    export_text_onnx,
)
from search.exceptions import ModelNotAvailable

QUANTIZE_MODES = ("auto", "on", "off")
TEXT_RUNTIMES = ("auto", "onnx", "torch")

__all__ = [
    "LOWERCASE_TEXT", "MAX_TEXT_CHARS", "ONNX_RECIPE", "PARITY_MIN", "PROBE_TEXTS",
    "QUANTIZE_MODES", "TEXT_BATCH_MAX", "TEXT_INPUTS", "TEXT_PADDING", "TEXT_RUNTIMES",
    "ClipEncoder", "EncodedBatch", "activate_text_runtime", "encode_text", "export_text_onnx",
    "get_encoder", "load_encoder", "loaded_encoder", "max_text_tokens", "probe_size",
    "quantize_mode", "text_runtime_mode",
]  # fmt: skip


def quantize_mode(value: str | bool | None) -> str:
    """MEEPO_CLIP_QUANTIZE as one of QUANTIZE_MODES (booleans and their spellings: auto / off)."""
    if isinstance(value, bool):
        return "auto" if value else "off"
    text = str(value if value is not None else "auto").strip().lower()
    if text in QUANTIZE_MODES:
        return text
    if text in ("true", "1", "yes"):
        return "auto"
    if text in ("false", "0", "no", ""):
        return "off"
    raise ModelNotAvailable(f"MEEPO_CLIP_QUANTIZE must be auto, on or off, not {value!r}.")


def text_runtime_mode(value: str | None) -> str:
    text = str(value or "auto").strip().lower()
    if text not in TEXT_RUNTIMES:
        raise ModelNotAvailable(f"MEEPO_CLIP_TEXT_RUNTIME must be auto, onnx or torch, not {value!r}.")  # fmt: skip
    return text


_loaded: dict[tuple, ClipEncoder] = {}


@functools.cache
def _load_encoder(
    name: str, device: str, quantize: str, threads: int, parity_min: float, text_runtime: str
) -> ClipEncoder:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    resolved = _resolve_device(device)
    model, processor = _from_pretrained(name)
    model = model.eval().to(resolved)
    encoder = ClipEncoder(
        model_name=name, dim=0, device=resolved, mode="fp32", model=model, processor=processor,
        quantize=quantize, parity_min=parity_min,
    )  # fmt: skip
    # The families keep their output size in different config fields; one probe text says it.
    encoder.dim = int(encoder.encode_texts(["a"]).shape[1])
    fp32 = encoder
    if (quantize != "off" or text_runtime != "torch") and resolved == "cpu":
        images = _probe_images(probe_size(processor))
        reference_texts = fp32.encode_texts(PROBE_TEXTS)
        if quantize != "off":
            reference = np.vstack([fp32.encode_images(images), reference_texts])
            encoder = _quantized(fp32, reference, images, quantize)
        if text_runtime != "torch":
            _with_onnx_text(encoder, fp32, reference_texts, text_runtime, threads)
    elif quantize != "off":
        encoder.notes.append(f"int8 is CPU only; fp32 on {resolved}")
    _loaded[(name, device, quantize, threads, parity_min, text_runtime)] = encoder
    return encoder


def load_encoder(
    name: str,
    device: str,
    quantize: str | bool,
    threads: int,
    parity_min: float = PARITY_MIN,
    text_runtime: str = "torch",
) -> ClipEncoder:
    """Load (once per process and argument set) the image-text encoder."""
    return _load_encoder(
        name, device, quantize_mode(quantize), threads, float(parity_min),
        text_runtime_mode(text_runtime),
    )  # fmt: skip


def _clear() -> None:
    _load_encoder.cache_clear()
    _loaded.clear()


load_encoder.cache_clear = _clear  # type: ignore[attr-defined]
load_encoder.cache_info = _load_encoder.cache_info  # type: ignore[attr-defined]


def _settings_key() -> tuple:
    return (
        settings.MEEPO_CLIP_MODEL,
        settings.MEEPO_CLIP_DEVICE,
        quantize_mode(settings.MEEPO_CLIP_QUANTIZE),
        settings.MEEPO_TORCH_THREADS,
        float(getattr(settings, "MEEPO_CLIP_PARITY_MIN", PARITY_MIN)),
        text_runtime_mode(getattr(settings, "MEEPO_CLIP_TEXT_RUNTIME", "auto")),
    )


def get_encoder() -> ClipEncoder:
    """The process-wide encoder for settings.MEEPO_CLIP_MODEL (raises ModelNotAvailable)."""
    return _load_encoder(*_settings_key())


def loaded_encoder() -> ClipEncoder | None:
    """The encoder for the current settings if this process has loaded it (never loads one)."""
    try:
        return _loaded.get(_settings_key())
    except ModelNotAvailable:
        return None


# Whether a model is loaded in this process (the health check reads it without loading one).
get_encoder.cache_info = _load_encoder.cache_info  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=2048)
def _cached_text_vector(model_name: str, text: str) -> NDArray[np.float32]:
    vector = get_encoder().text_coalescer(text)
    vector.setflags(write=False)  # shared by every caller of the cache
    return vector


def encode_text(text: str) -> NDArray[np.float32]:
    """(dim,) unit vector for one text query; repeated queries are served from an LRU cache."""
    return _cached_text_vector(settings.MEEPO_CLIP_MODEL, " ".join(text.split()))
