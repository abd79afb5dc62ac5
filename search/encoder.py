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

Precision (`MEEPO_CLIP_QUANTIZE`): `auto` (the default) serves int8 (torch dynamic quantisation of
the Linear layers, CPU only) when its embeddings of a probe batch agree with fp32 (min cosine >=
`MEEPO_CLIP_PARITY_MIN`), else logs a warning and stays fp32; `on` serves int8 whatever the probe
says (the parity is still measured and reported); `off` is fp32. (`true`/`false` mean auto/off.)

Text tower runtime (`MEEPO_CLIP_TEXT_RUNTIME`): `auto` (the default) runs text queries through
ONNX Runtime (the text tower exported once with `torch.onnx.export`, int8 by
`onnxruntime.quantization.quantize_dynamic` when the encoder is int8, cached under
MEEPO_DATA_DIR/cache/onnx) when onnxruntime is installed and the session passes the same parity
gate against the fp32 text tower, else torch; `onnx` tries it even when quantisation is off;
`torch` never. Images always go through torch. `ClipEncoder.describe()` says what is in use
(/healthz shows it).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import queue
import shutil
import tempfile
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
PARITY_MIN = 0.99  # default of MEEPO_CLIP_PARITY_MIN
QUANTIZE_MODES = ("auto", "on", "off")
TEXT_RUNTIMES = ("auto", "onnx", "torch")
# Texts the parity gate compares (with the probe images) against the fp32 encoder.
PROBE_TEXTS = (
    "a red leather handbag", "blue running shoes", "wooden dining table", "gold ring",
    "striped cotton cushion for the living room", "matte black desk lamp", "Navy linen shirt",
    "kids rain boots size 30",
)  # fmt: skip
# Bump when the ONNX export recipe changes: cached exports of the old recipe are not reused.
ONNX_RECIPE = 1
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
    quantize: str = "off"  # what MEEPO_CLIP_QUANTIZE asked for (auto / on / off)
    parity_min: float = PARITY_MIN
    text_runtime: str = "torch"  # "torch" or "onnx" (text queries; images are always torch)
    text_parity: float | None = None  # onnx: min cosine of its text vectors to fp32 torch
    notes: list[str] = field(default_factory=list)  # why a faster path was not taken
    onnx_text: Any = field(default=None, repr=False)  # _OnnxText, gated per process
    # Concurrent text queries of this process's threads share one forward pass (search.batching).
    text_coalescer: Coalescer[str, NDArray[np.float32]] = field(init=False, repr=False)

    def __post_init__(self):
        self.text_coalescer = Coalescer(
            lambda texts: list(self.encode_texts(texts)), max_batch=TEXT_BATCH_MAX
        )

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

    def tokenize(self, texts: Sequence[str]) -> dict[str, Any]:
        """The text tower's inputs (torch tensors on CPU) for `texts`."""
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
        return {k: tokens[k] for k in TEXT_INPUTS if k in tokens}

    def encode_texts(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """(n, dim) float32 unit vectors for texts (truncated at the model's text length)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        inputs = self.tokenize(texts)
        if self.onnx_text is not None:
            vectors = self.onnx_text.run(inputs)
            if vectors is not None:
                return vectors
        return self._torch_texts(inputs)

    def _torch_texts(self, inputs: dict[str, Any]) -> NDArray[np.float32]:
        import torch

        inputs = {k: v.to(self.device) for k, v in inputs.items()}
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


def _min_cosine(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    return float(np.min(np.sum(a * b, axis=1)))


def _quantized(encoder: ClipEncoder, reference: NDArray[np.float32], images, quantize: str):
    """The int8 encoder if it agrees with fp32 on the probe batch (or `quantize == "on"`), else
    the fp32 one (warning, and a note in `describe()`)."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    if encoder.device != "cpu":
        logger.warning("MEEPO_CLIP_QUANTIZE applies to CPU only; using fp32 on %s", encoder.device)
        encoder.notes.append(f"int8 is CPU only; fp32 on {encoder.device}")
        return encoder
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
        qmodel = quantize_dynamic(qmodel.eval(), linears, dtype=torch.qint8, inplace=True)
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


# --- ONNX Runtime text tower ----------------------------------------------------------------


class _OnnxText:
    """An ONNX Runtime session for the text tower: tokenizer outputs in, unit vectors out.

    The session is made per process, on first use, and passes the parity gate there (its text
    vectors against the fp32 ones recorded at load) before it serves: ONNX Runtime must not be
    imported in a process that forks afterwards (a forked child then hangs or aborts at exit),
    so the gunicorn master only exports the file (in a subprocess) and each worker opens it in
    post_fork. One intra-op thread, like torch's in a web worker.
    """

    def __init__(self, path: Path, input_names, threads: int, reference, probe_inputs, parity_min: float, force: bool):  # fmt: skip
        self.path = path
        self.input_names = tuple(input_names)
        self.threads = max(1, threads)
        self.reference = reference  # fp32 vectors of PROBE_TEXTS
        self.probe_inputs = probe_inputs
        self.parity_min = parity_min
        self.force = force
        self.parity: float | None = None
        self.state = "pending"  # in the process that last looked: pending / active / refused
        self._session = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def session(self):
        """This process's session, or None when the gate refused it (torch serves the text)."""
        pid = os.getpid()
        if self._pid != pid:
            with self._lock:
                if self._pid != pid:
                    self._session = self._activate()
                    self._pid = pid
        return self._session

    def state_here(self) -> str:
        return self.state if self._pid == os.getpid() else "pending"

    def _activate(self):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
            parity = _min_cosine(self.reference, self._run(session, self.probe_inputs))
        except Exception as exc:  # a corrupt or foreign file: torch serves the text
            logger.warning("ONNX text tower %s unusable (%s); using torch", self.path, exc)
            self.state = f"refused: {type(exc).__name__}"
            return None
        self.parity = parity
        if parity < self.parity_min and not self.force:
            logger.warning(
                "ONNX text tower disagrees with fp32 (min cosine %.4f < %.4f); using torch",
                parity,
                self.parity_min,
            )
            self.state = f"refused: parity {parity:.4f} < {self.parity_min}"
            return None
        logger.info("ONNX Runtime text tower on (%s, min cosine to fp32 %.4f)", self.path.name, parity)  # fmt: skip
        self.state = "active"
        return session

    def _run(self, session, inputs: dict[str, Any]) -> NDArray[np.float32]:
        feeds = {n: inputs[n].numpy().astype(np.int64, copy=False) for n in self.input_names}
        (out,) = session.run(["embedding"], feeds)
        vectors = np.asarray(out, dtype=np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def run(self, inputs: dict[str, Any]) -> NDArray[np.float32] | None:
        session = self.session()
        return None if session is None else self._run(session, inputs)


# The gunicorn master sets this (deploy/gunicorn.conf.py): export the ONNX file in a subprocess
# and open it only in the forked workers (post_fork calls `activate_text_runtime`).
DEFER_ONNX = False


def _text_module(model, input_names: Sequence[str]):
    import torch

    class TextTower(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            out = self.inner.get_text_features(**dict(zip(input_names, args, strict=True)))
            return _features(out)

    return TextTower(model).eval()


def _onnx_cache_dir(encoder: ClipEncoder, int8: bool) -> Path:
    """Where this model's exported text tower lives: keyed by the model (name, config, a digest
    of the text tower's weights), the library versions and the recipe."""
    from importlib.metadata import version

    import torch
    import transformers

    digest = hashlib.sha256()
    # the version from metadata: importing onnxruntime here would break forked workers
    meta = [encoder.model_name, ONNX_RECIPE, int8, torch.__version__, transformers.__version__,
            version("onnxruntime"), encoder.model.config.to_json_string()]  # fmt: skip
    digest.update(json.dumps(meta, default=str).encode())
    for name, param in encoder.model.named_parameters():
        if "text" in name or "token" in name:
            data = param.detach().float().flatten()
            digest.update(f"{name}{tuple(param.shape)}".encode())
            digest.update(data[:: max(1, data.numel() // 4096)].numpy().tobytes())
    root = Path(settings.MEEPO_DATA_DIR) / "cache" / "onnx"
    return root / digest.hexdigest()[:24]


def export_text_onnx(encoder: ClipEncoder, int8: bool) -> tuple[Path, tuple[str, ...]]:
    """The text tower as an ONNX file (int8 weights when `int8`), exported once per model and
    reused from the cache. Returns the file and its input names. With DEFER_ONNX the export
    runs in a subprocess, so this process never imports onnxruntime."""
    target = _onnx_cache_dir(encoder, int8)
    model_file = target / ("text-int8.onnx" if int8 else "text.onnx")
    names_file = target / "inputs.json"
    if not (model_file.is_file() and names_file.is_file()):
        if DEFER_ONNX:
            _export_in_subprocess(encoder.model_name, int8, target)
        else:
            _export(encoder, int8, target)
    return model_file, tuple(json.loads(names_file.read_text()))


def _export_in_subprocess(name: str, int8: bool, target: Path) -> None:
    import subprocess
    import sys

    code = "import sys; from search.encoder import _export_main; _export_main(*sys.argv[1:])"
    root = Path(__file__).resolve().parent.parent
    subprocess.run(
        [sys.executable, "-c", code, name, "1" if int8 else "0", str(target)],
        cwd=root, check=True, capture_output=True, timeout=900,
    )  # fmt: skip


def _export_main(name: str, int8: str, target: str) -> None:
    """`python -c` entry of _export_in_subprocess: load the model, export its text tower."""
    model, processor = _from_pretrained(name)
    encoder = ClipEncoder(name, 0, "cpu", "fp32", model=model.eval(), processor=processor)
    _export(encoder, int8 == "1", Path(target))


def _export(encoder: ClipEncoder, int8: bool, target: Path) -> None:
    import torch

    if encoder.mode == "int8":  # export the float tower: ONNX Runtime quantises its own way
        raise ValueError("export_text_onnx needs the fp32 encoder")
    sample = encoder.tokenize(["striped red wooden chair", "a b"])
    names = tuple(sample)
    axes = {0: "batch", 1: "tokens"}
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        fp32 = work / "text.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _text_module(encoder.model, names),
                tuple(sample[n] for n in names),
                str(fp32),
                input_names=list(names),
                output_names=["embedding"],
                dynamic_axes={n: axes for n in names},
                opset_version=17,
                dynamo=False,
            )
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            previous = logging.root.manager.disable
            logging.disable(logging.WARNING)  # it logs every tensor it skips on the root logger
            try:
                quantize_dynamic(fp32, work / "text-int8.onnx", weight_type=QuantType.QInt8)
            finally:
                logging.disable(previous)
            fp32.unlink()
        (work / "inputs.json").write_text(json.dumps(list(names)))
        if target.exists():  # another process finished first: keep its copy
            shutil.rmtree(work)
        else:
            work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _with_onnx_text(encoder, fp32, reference_texts, runtime: str, threads: int) -> None:
    """Attach the ONNX Runtime text tower to `encoder`; it serves once it passes the parity gate
    in the process that uses it (at once here, or in each gunicorn worker with DEFER_ONNX)."""
    import importlib.util

    if encoder.device != "cpu":
        return
    if importlib.util.find_spec("onnxruntime") is None:
        if runtime == "onnx":
            logger.warning("MEEPO_CLIP_TEXT_RUNTIME=onnx but onnxruntime is not installed; torch")
        encoder.notes.append("onnxruntime not installed: torch text tower")
        return
    if runtime == "auto" and encoder.mode != "int8":
        return  # auto: ONNX only where its int8 halves the text tower (docs/benchmarks.md)
    try:
        path, names = export_text_onnx(fp32, encoder.mode == "int8")
    except Exception as exc:  # not exportable: torch serves the text
        logger.warning("ONNX text tower unavailable for %s (%s); using torch", encoder.model_name, exc)  # fmt: skip
        encoder.notes.append(f"onnx unavailable: {type(exc).__name__}")
        return
    encoder.onnx_text = _OnnxText(
        path, names, threads, reference_texts, fp32.tokenize(PROBE_TEXTS),
        encoder.parity_min, force=encoder.quantize == "on",
    )  # fmt: skip
    encoder.text_runtime = "onnx"
    if not DEFER_ONNX:
        activate_text_runtime(encoder)


def activate_text_runtime(encoder: ClipEncoder) -> None:
    """Open the ONNX text tower in this process and gate it (gunicorn: post_fork); a refused
    one is dropped here, so text queries go through torch."""
    onnx = encoder.onnx_text
    if onnx is None:
        return
    if onnx.session() is None:
        encoder.notes.append(f"onnx {onnx.state}")
        encoder.onnx_text, encoder.text_runtime = None, "torch"
    encoder.text_parity = onnx.parity


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
