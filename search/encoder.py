"""Image and text encoder, loaded once per process and shared by the pipeline and the site.

`MEEPO_CLIP_MODEL` names any Hugging Face image-text dual encoder that `AutoModel` loads and that
has `get_image_features` / `get_text_features`: CLIP, SigLIP, SigLIP 2 (multilingual tokenizer),
ChineseCLIP, AltCLIP. Preprocessing comes from the model's own processor (`AutoProcessor`), the
text length from its config, the embedding dimension from a probe at load time; only what the
families document differently is chosen here (`TEXT_PADDING`, `LOWERCASE_TEXT`).

Guarantees: vectors are float32, L2-normalised, and identical to what the reference
`model.get_*_features` + processor pipeline gives for the same inputs (the encoder uses that very
processor and model; only the batching and threading around them are ours). A model that cannot
be loaded raises `ModelNotAvailable` with what to do, never a transformers stack trace.

The optional int8 mode (`MEEPO_CLIP_QUANTIZE`) is used only when its embeddings of a probe batch
agree with fp32 (cosine >= PARITY_MIN); otherwise the encoder logs a warning and stays fp32.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
from django.conf import settings
from numpy.typing import NDArray

from search.batching import Coalescer
from search.exceptions import ModelNotAvailable

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

T = TypeVar("T")
PARITY_MIN = 0.99
# Max characters of a text query worth tokenising; CLIP truncates at 77 tokens anyway.
MAX_TEXT_CHARS = 1000
# Text queries per coalesced forward pass: more than a worker's threads, so all can share one.
TEXT_BATCH_MAX = 16
# SigLIP towers were trained on texts padded to their full length (64 tokens) and pool the last
# position, so a shorter padding changes the vector; CLIP-like towers pool at the end token.
TEXT_PADDING = {"siglip": "max_length", "siglip2": "max_length"}
# SigLIP 2 was trained on lower-cased text (its model card says to do the same).
LOWERCASE_TEXT = frozenset({"siglip2"})
# Tokenizer outputs a text tower takes (ChineseCLIP's BERT also takes token types).
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class EncodedBatch(Generic[T]):
    """One batch from `ClipEncoder.encode_stream`: vectors for `items`, and the items that failed."""

    items: list[T]
    vectors: NDArray[np.float32]
    failures: list[tuple[T, Exception]] = field(default_factory=list)


@dataclass
class ClipEncoder:
    model_name: str
    dim: int
    device: str
    mode: str  # "fp32" or "int8"
    model: Any = field(repr=False)
    processor: Any = field(repr=False)
    parity: float | None = None  # int8 mode: min cosine to fp32 on the probe batch
    # Concurrent text queries of this process's threads share one forward pass (search.batching).
    text_coalescer: Coalescer[str, NDArray[np.float32]] = field(init=False, repr=False)

    def __post_init__(self):
        self.text_coalescer = Coalescer(
            lambda texts: list(self.encode_texts(texts)), max_batch=TEXT_BATCH_MAX
        )

    def _pixels(self, image: Image.Image):
        """Pixel tensor (1, 3, H, W) for one image, by the model's own image processor.

        The processor scales the shorter side to the model's input size, so a 4000x1 strip would
        become gigabytes: a picture outside search.images' bounds is refused (UnsupportedImage)
        whichever path brought it here.
        """
        from search.images import check_shape

        check_shape(
            *image.size,
            max_pixels=settings.MEEPO_MAX_IMAGE_PIXELS,
            max_aspect=settings.MEEPO_MAX_IMAGE_ASPECT,
        )
        return dict(self.processor.image_processor(images=[image], return_tensors="pt"))

    def _forward_images(self, pixels: list[dict]) -> NDArray[np.float32]:
        """Vectors for per-image processor outputs (pixel values, and SigLIP 2's patch mask and
        shapes), stacked into one batch."""
        import torch

        batch = {key: torch.cat([p[key] for p in pixels]).to(self.device) for key in pixels[0]}
        with torch.inference_mode():
            out = self.model.get_image_features(**batch)
        return _normalise(_features(out))

    def encode_images(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        """(n, dim) float32 unit vectors for RGB PIL images."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._forward_images([self._pixels(img) for img in images])

    def encode_texts(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """(n, dim) float32 unit vectors for texts (truncated at the model's text length)."""
        import torch

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        family = self.model.config.model_type
        texts = [t[:MAX_TEXT_CHARS] for t in texts]
        if family in LOWERCASE_TEXT:
            texts = [t.lower() for t in texts]
        tokens = self.processor.tokenizer(
            texts,
            padding=TEXT_PADDING.get(family, True),
            truncation=True,
            max_length=max_text_tokens(self.model, self.processor),
            return_tensors="pt",
        )
        inputs = {k: tokens[k].to(self.device) for k in TEXT_INPUTS if k in tokens}
        with torch.inference_mode():
            out = self.model.get_text_features(**inputs)
        return _normalise(_features(out))

    def encode_stream(
        self,
        items: Iterable[T],
        load: Callable[[T], Image.Image],
        *,
        batch_size: int = 32,
    ) -> Iterator[EncodedBatch[T]]:
        """Encode many images, decoding/resizing batch i+1 in a thread while the model runs batch i.

        `load(item)` returns an RGB image or raises; such items are reported in `failures` and
        the rest of the batch goes on. Batches come out in input order.
        """

        ready: queue.Queue = queue.Queue(maxsize=2)
        stop = threading.Event()
        producer = threading.Thread(
            target=self._prepare_batches,
            args=(iter(items), load, batch_size, ready, stop),
            name="clip-preprocess",
            daemon=True,
        )
        producer.start()
        try:
            while (got := ready.get()) is not None:
                if isinstance(got, BaseException):
                    raise got
                ok_items, pixels, failures = got
                vectors = (
                    self._forward_images(pixels)
                    if pixels
                    else np.zeros((0, self.dim), dtype=np.float32)
                )
                yield EncodedBatch(items=ok_items, vectors=vectors, failures=failures)
        finally:
            stop.set()
            _drain(ready)
            producer.join(timeout=10)

    def _prepare_batches(self, items, load, batch_size, ready, stop) -> None:
        _lower_thread_priority()
        try:
            while not stop.is_set():
                ok_items, pixels, failures = [], [], []
                for item in items:
                    try:
                        pixels.append(self._pixels(load(item)))
                        ok_items.append(item)
                    except Exception as exc:  # reported per item; the caller decides
                        failures.append((item, exc))
                    if len(ok_items) + len(failures) >= batch_size:
                        break
                if not ok_items and not failures:
                    break
                _put(ready, (ok_items, pixels, failures), stop)
        except BaseException as exc:  # surfaces in the consumer instead of dying silently
            _put(ready, exc, stop)
        _put(ready, None, stop)


def _lower_thread_priority() -> None:
    """Nice this thread only (Linux threads are tasks): on a 2-core box torch's two threads must
    not be preempted mid parallel-region by preprocessing, which would stall both at the
    barrier; the preprocessing runs in their gaps and stays a batch ahead."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux / not permitted: only slower
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def _put(q: queue.Queue, value, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            q.put(value, timeout=0.1)
            return
        except queue.Full:
            continue


def _drain(q: queue.Queue) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


def max_text_tokens(model, processor) -> int:
    """The longest text the model reads, in tokens: its position table, or the tokenizer's
    limit when smaller (XLM-R/BERT towers reserve positions)."""
    positions = int(model.config.text_config.max_position_embeddings)
    limit = getattr(processor.tokenizer, "model_max_length", None) or positions
    return min(positions, int(limit)) if limit < 1_000_000 else positions


def _features(out):
    """The projected embedding: transformers 5 returns an output object, older code a tensor."""
    return out.pooler_output if hasattr(out, "pooler_output") else out


def _normalise(tensor) -> NDArray[np.float32]:
    vectors = tensor.detach().float().cpu().numpy().astype(np.float32, copy=False)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _resolve_device(requested: str) -> str:
    import torch

    requested = (requested or "cpu").lower()
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelNotAvailable("MEEPO_CLIP_DEVICE=cuda but no CUDA device is available.")
    if requested not in ("cpu", "cuda"):
        raise ModelNotAvailable(f"MEEPO_CLIP_DEVICE must be cpu, cuda or auto, not {requested!r}.")
    return requested


def _from_pretrained(name: str):
    """Model and processor from a local directory or the Hugging Face cache (network last)."""
    from transformers import AutoModel, AutoProcessor

    is_dir = Path(name).expanduser().is_dir()
    source = str(Path(name).expanduser()) if is_dir else name
    attempts = [True] if is_dir or os.environ.get("HF_HUB_OFFLINE") else [True, False]
    error: Exception | None = None
    for local_only in attempts:
        # The cache first: without a network the hub client retries for ~30 s before failing.
        try:
            model = AutoModel.from_pretrained(source, local_files_only=local_only)
            # PIL preprocessing, chosen explicitly: it is what the reference models used, it
            # needs no torchvision, and the choice no longer depends on what else is installed.
            processor = AutoProcessor.from_pretrained(
                source, local_files_only=local_only, backend="pil"
            )
            break
        except Exception as exc:  # transformers raises OSError/ValueError/HF errors alike
            error = exc
    else:
        raise ModelNotAvailable(
            f"Cannot load the model {name!r} ({type(error).__name__}: {str(error)[:200]}). "
            "Run `manage.py download_model --to DIR` on a machine with internet and point "
            "MEEPO_CLIP_MODEL at DIR, or point MEEPO_CLIP_MODEL at an existing model directory "
            "(`manage.py create_random_model DIR` makes a meaningless random one for offline "
            "demos)."
        ) from error
    if not all(hasattr(model, m) for m in ("get_image_features", "get_text_features")) or not all(
        hasattr(processor, p) for p in ("image_processor", "tokenizer")
    ):
        raise ModelNotAvailable(
            f"{name!r} is a {type(model).__name__}, not an image-text dual encoder (CLIP, "
            "SigLIP, SigLIP 2, ChineseCLIP, AltCLIP)."
        )
    return model, processor


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


def _quantized(encoder: ClipEncoder) -> ClipEncoder:
    """The int8 encoder if it agrees with fp32 on a probe batch, else the fp32 one (warning)."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    if encoder.device != "cpu":
        logger.warning("MEEPO_CLIP_QUANTIZE applies to CPU only; using fp32 on %s", encoder.device)
        return encoder
    images = _probe_images(probe_size(encoder.processor))
    texts = ["a red leather handbag", "blue running shoes", "wooden dining table", "gold ring"]
    reference = np.vstack([encoder.encode_images(images), encoder.encode_texts(texts)])
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
        qmodel = quantize_dynamic(encoder.model, linears, dtype=torch.qint8)
    candidate = ClipEncoder(
        encoder.model_name, encoder.dim, "cpu", "int8", model=qmodel, processor=encoder.processor
    )
    try:
        got = np.vstack([candidate.encode_images(images), candidate.encode_texts(texts)])
    except Exception:  # an architecture int8 does not fit: serving fp32 beats not serving
        logger.exception("int8 encoding failed for %s; using fp32", encoder.model_name)
        return encoder
    parity = float(np.min(np.sum(reference * got, axis=1)))
    if parity < PARITY_MIN:
        logger.warning(
            "int8 encoder disagrees with fp32 (min cosine %.4f < %.2f); using fp32",
            parity,
            PARITY_MIN,
        )
        return encoder
    logger.info("int8 encoder enabled (min cosine to fp32 on the probe batch %.4f)", parity)
    candidate.parity = parity
    return candidate


@functools.cache
def load_encoder(name: str, device: str, quantize: bool, threads: int) -> ClipEncoder:
    """Load (once per process and argument set) the image-text encoder."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    resolved = _resolve_device(device)
    model, processor = _from_pretrained(name)
    model = model.eval().to(resolved)
    encoder = ClipEncoder(
        model_name=name, dim=0, device=resolved, mode="fp32", model=model, processor=processor
    )
    # The families keep their output size in different config fields; one probe text says it.
    encoder.dim = int(encoder.encode_texts(["a"]).shape[1])
    return _quantized(encoder) if quantize else encoder


def get_encoder() -> ClipEncoder:
    """The process-wide encoder for settings.MEEPO_CLIP_MODEL (raises ModelNotAvailable)."""
    return load_encoder(
        settings.MEEPO_CLIP_MODEL,
        settings.MEEPO_CLIP_DEVICE,
        settings.MEEPO_CLIP_QUANTIZE,
        settings.MEEPO_TORCH_THREADS,
    )


# Whether a model is loaded in this process (the health check reads it without loading one).
get_encoder.cache_info = load_encoder.cache_info  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=2048)
def _cached_text_vector(model_name: str, text: str) -> NDArray[np.float32]:
    vector = get_encoder().text_coalescer(text)
    vector.setflags(write=False)  # shared by every caller of the cache
    return vector


def encode_text(text: str) -> NDArray[np.float32]:
    """(dim,) unit vector for one text query; repeated queries are served from an LRU cache."""
    return _cached_text_vector(settings.MEEPO_CLIP_MODEL, " ".join(text.split()))
