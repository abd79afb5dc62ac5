"""The encoder object: one loaded image-text model and its processor, turned into L2-normalised
float32 vectors (images in batches or as a preprocessing stream, texts through torch or an attached
ONNX Runtime text tower). Loading and choosing a precision live in search.encoder.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
from django.conf import settings
from numpy.typing import NDArray

from search.batching import Coalescer
from search.encoder_tokens import direct_tokenizer
from search.exceptions import ModelNotAvailable

if TYPE_CHECKING:
    from PIL import Image

T = TypeVar("T")
PARITY_MIN = 0.99  # default of MEEPO_CLIP_PARITY_MIN
# Max characters of a text query worth tokenising; CLIP truncates at 77 tokens anyway.
MAX_TEXT_CHARS = 1000
# Text queries per coalesced forward pass: more than a worker's threads, so all can share one.
TEXT_BATCH_MAX = 16
# A coalesced pass runs queries whose token counts differ by more than this in separate forward
# passes (search.encoder_tokens.DirectTokenizer.groups): a padded token costs about what a
# query's own token costs, an extra pass about 6-7 tokens' worth (reading the weights again).
TEXT_PAD_SPREAD = 8
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
    quantize: str = "off"  # what MEEPO_CLIP_QUANTIZE asked for (auto / on / off)
    parity_min: float = PARITY_MIN
    text_runtime: str = "torch"  # "torch" or "onnx" (text queries; images are always torch)
    text_parity: float | None = None  # onnx: min cosine of its text vectors to fp32 torch
    notes: list[str] = field(default_factory=list)  # why a faster path was not taken
    onnx_text: Any = field(default=None, repr=False)  # _OnnxText, gated per process
    # search.encoder_tokens.DirectTokenizer once checked, False when the processor must serve.
    _direct_tokens: Any = field(default=None, init=False, repr=False)
    # Concurrent text queries of this process's threads share one forward pass (search.batching).
    text_coalescer: Coalescer[str, NDArray[np.float32]] = field(init=False, repr=False)

    def __post_init__(self):
        self.text_coalescer = Coalescer(self._encode_queries, max_batch=text_batch_max())

    def _runtime_here(self) -> str:
        if self.onnx_text is None:
            return "torch"
        state = self.onnx_text.state_here()
        return "onnx" if state == "active" else f"onnx ({state}; torch meanwhile)"

    def describe(self) -> dict[str, Any]:
        """What serves queries, for /healthz and logs."""
        return {
            "precision": self.mode,
            "requested": self.quantize,
            "parity": _round(self.parity),
            "parity_min": self.parity_min,
            "text_runtime": self._runtime_here(),
            "text_parity": _round(self.onnx_text.parity if self.onnx_text else self.text_parity),
            "text_file": self.onnx_text.path.name if self.onnx_text else None,
            "device": self.device,
            "notes": list(self.notes),
        }

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

    def _texts_in(self, texts: Sequence[str]) -> list[str]:
        texts = [t[:MAX_TEXT_CHARS] for t in texts]
        if self.model.config.model_type in LOWERCASE_TEXT:
            texts = [t.lower() for t in texts]
        return texts

    def tokenize(self, texts: Sequence[str]) -> dict[str, Any]:
        """The text tower's inputs (torch tensors on CPU) for `texts`: the processor's own call,
        the reference that `token_arrays` is checked against."""
        family = self.model.config.model_type
        tokens = self.processor.tokenizer(
            self._texts_in(texts),
            padding=TEXT_PADDING.get(family, True),
            truncation=True,
            max_length=max_text_tokens(self.model, self.processor),
            return_tensors="pt",
        )
        return {k: tokens[k] for k in TEXT_INPUTS if k in tokens}

    def _direct(self):
        if self._direct_tokens is None:
            self._direct_tokens = direct_tokenizer(self) or False
        return self._direct_tokens

    def token_arrays(self, texts: Sequence[str]) -> dict[str, NDArray[np.int64]]:
        """`tokenize` as int64 numpy arrays, by the fast `tokenizers` backend called directly
        when it gives exactly the processor's ids on the check texts (0.04 ms instead of
        0.13-0.4 per query: transformers' call chain), else by the processor."""
        if direct := self._direct():
            return direct(self._texts_in(texts))
        return {k: v.numpy().astype(np.int64, copy=False) for k, v in self.tokenize(texts).items()}

    def encode_texts(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """(n, dim) float32 unit vectors for texts (truncated at the model's text length)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._forward_texts(self.token_arrays(texts))

    def _encode_queries(self, texts: list[str]) -> list[NDArray[np.float32]]:
        """One coalesced pass of text queries: `encode_texts`, in length groups (TEXT_PAD_SPREAD)
        so that a long query does not multiply the cost of the short ones beside it."""
        unique = list(dict.fromkeys(texts))
        if len(unique) < len(texts):  # the same query from several threads at once: encode it once
            vectors = dict(zip(unique, self._encode_queries(unique), strict=True))
            return [vectors[text] for text in texts]
        direct = self._direct()
        if not direct or len(texts) == 1:
            return list(self.encode_texts(texts))
        encodings = direct.encode(self._texts_in(texts))
        out: list[Any] = [None] * len(texts)
        for group in direct.groups(encodings, TEXT_PAD_SPREAD):
            vectors = self._forward_texts(direct.arrays([encodings[i] for i in group]))
            for i, vector in zip(group, vectors, strict=True):
                out[i] = vector
        return out

    def _forward_texts(self, inputs: dict[str, Any]) -> NDArray[np.float32]:
        if self.onnx_text is not None:
            vectors = self.onnx_text.run(inputs)
            if vectors is not None:
                return vectors
        return self._torch_texts(inputs)

    def _torch_texts(self, inputs: dict[str, Any]) -> NDArray[np.float32]:
        import torch

        inputs = {k: torch.as_tensor(v).to(self.device) for k, v in inputs.items()}
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


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


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


def text_batch_max() -> int:
    """Queries per coalesced pass: TEXT_BATCH_MAX, or 1 with MEEPO_CLIP_TEXT_COALESCE=false.

    Why a switch: dynamic int8 (torch's, or MEEPO_CLIP_ONNX_INT8=dynamic) quantises activations
    per batch (one scale for the whole tensor), so a query's vector moves a little with the
    company it is encoded in (min cosine 0.9995 alone vs in a pass of 4), and on near-tied
    products the visual order moves with it. The default ONNX int8 tower (static scales) does not
    need it. Off, a query's vector never depends on other traffic, at the price of the passes'
    shared weight reads (about 1.3 ms CPU per query with 4 busy threads, bench.onnx_text)."""
    value = getattr(settings, "MEEPO_CLIP_TEXT_COALESCE", None)
    if value is None:  # not in meepo/settings.py yet: the environment, default on
        value = os.environ.get("MEEPO_CLIP_TEXT_COALESCE", "true")
    on = value if isinstance(value, bool) else str(value).strip().lower() not in ("0", "false", "no", "off")  # fmt: skip
    return TEXT_BATCH_MAX if on else 1


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
