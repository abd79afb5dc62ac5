"""The ONNX Runtime text tower: export (cached per model under MEEPO_DATA_DIR/cache/onnx, in a
subprocess when the gunicorn master defers), and a per-process session gated against fp32.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from numpy.typing import NDArray

from search.encoder_graph import lean_onnx_file
from search.encoder_int8 import PROBE_TEXTS, _min_cosine, onnx_int8_scheme, quantize_onnx_text
from search.encoder_model import ClipEncoder, _features, _from_pretrained
from search.encoder_prefix import prefix_onnx_file

# The encoder's one logger: log configuration and tests name "search.encoder".
logger = logging.getLogger("search.encoder")

# Bump when the ONNX export recipe changes: cached exports of the old recipe are not reused.
# 2: int8 by static quantisation (MEEPO_CLIP_ONNX_INT8), its scheme in the key and file name.
# 3: lean graphs (search.encoder_graph: constant Reshape targets, bit-identical outputs).
# 4: the first token's rows stored (search.encoder_prefix, bit-identical outputs).
ONNX_RECIPE = 4


class _OnnxText:
    """An ONNX Runtime session for the text tower: tokenizer outputs in, unit vectors out.

    The session is made per process, on first use, and passes the parity gate there (its text
    vectors against the fp32 ones recorded at load) before it serves: ONNX Runtime must not be
    imported in a process that forks afterwards (a forked child then hangs or aborts at exit),
    so the gunicorn master only exports the file (in a subprocess) and each worker opens it in
    post_fork. One intra-op thread, like torch's in a web worker.
    """

    def __init__(self, path: Path, input_names, threads: int, reference, probe_inputs, parity_min: float, force: bool, fallback: Path | None = None):  # fmt: skip
        self.path = path
        # The dynamic int8 file beside a static one: fixed activation scales fit the random-weight
        # towers we can test; a real tower's outliers may not fit them, and then dynamic (vectors
        # move a little with their batch) still beats falling back to torch.
        self.fallback = fallback
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
        for path in (self.path, self.fallback):
            if path is None or not path.is_file():
                continue
            session = self._open(path)
            if session is not None:
                self.path = path
                return session
        return None

    def _open(self, path: Path):
        """`path`'s session when it passes the parity gate, else None (state says why)."""
        import onnxruntime as ort

        try:
            session = ort.InferenceSession(str(path), session_options(self.threads), providers=["CPUExecutionProvider"])  # fmt: skip
            parity = _min_cosine(self.reference, self._run(session, self.probe_inputs))
        except Exception as exc:  # a corrupt or foreign file: torch serves the text
            logger.warning("ONNX text tower %s unusable (%s); using torch", path, exc)
            self.state = f"refused: {type(exc).__name__}"
            return None
        self.parity = parity
        if parity < self.parity_min and not self.force:
            logger.warning(
                "ONNX text tower disagrees with fp32 (%s: min cosine %.4f < %.4f)",
                path.name,
                parity,
                self.parity_min,
            )
            self.state = f"refused: parity {parity:.4f} < {self.parity_min}"
            return None
        logger.info("ONNX Runtime text tower on (%s, min cosine to fp32 %.4f)", path.name, parity)  # fmt: skip
        self.state = "active"
        return session

    def _run(self, session, inputs: dict[str, Any]) -> NDArray[np.float32]:
        feeds = {n: np.asarray(inputs[n], dtype=np.int64) for n in self.input_names}
        (out,) = session.run(["embedding"], feeds)
        vectors = np.asarray(out, dtype=np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def run(self, inputs: dict[str, Any]) -> NDArray[np.float32] | None:
        session = self.session()
        return None if session is None else self._run(session, inputs)


def session_options(threads: int, spinning: bool = False):
    """The served session's options. Measured against the alternatives (bench.onnx_text, one
    short query, process CPU per query, every output bit-identical): memory arena off, memory
    pattern off, ORT_ENABLE_EXTENDED/BASIC and IOBinding are all within noise (+-5% in one
    run, +-1.3% in a longer interleaved A/B), so the defaults stay; two intra-op threads cost
    +17-21% CPU for less wall time, and a spinning pool ~9x (its threads spin on after the call)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    # Waiting pool threads sleep instead of spinning: with MEEPO_TORCH_THREADS > 1 a spinning
    # pool burns a core per worker while the request does its other work (one thread: no pool).
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


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
    scheme = onnx_int8_scheme() if int8 else "fp32"
    meta = [encoder.model_name, ONNX_RECIPE, scheme, torch.__version__, transformers.__version__,
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
    scheme = onnx_int8_scheme() if int8 else "fp32"
    model_file = target / (f"text-int8-{scheme}.onnx" if int8 else "text.onnx")
    names_file = target / "inputs.json"
    if not (model_file.is_file() and names_file.is_file()):
        if DEFER_ONNX:
            _export_in_subprocess(encoder.model_name, scheme, target)
        else:
            _export(encoder, scheme, target)
    return model_file, tuple(json.loads(names_file.read_text()))


def _export_in_subprocess(name: str, scheme: str, target: Path) -> None:
    import subprocess
    import sys

    code = "import sys; from search.encoder_onnx import _export_main; _export_main(*sys.argv[1:])"
    root = Path(__file__).resolve().parent.parent
    subprocess.run(
        [sys.executable, "-c", code, name, scheme, str(target)],
        cwd=root, check=True, capture_output=True, timeout=900,
    )  # fmt: skip


def _export_main(name: str, scheme: str, target: str) -> None:
    """`python -c` entry of _export_in_subprocess: load the model, export its text tower."""
    model, processor = _from_pretrained(name)
    encoder = ClipEncoder(name, 0, "cpu", "fp32", model=model.eval(), processor=processor)
    _export(encoder, scheme, Path(target))


def _export(encoder: ClipEncoder, scheme: str, target: Path) -> None:
    """Export the fp32 text tower into `target`, quantised to int8 by `scheme` (static or
    dynamic, search.encoder_int8.quantize_onnx_text) unless it is "fp32"."""
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
        if scheme != "fp32":
            out = work / f"text-int8-{scheme}.onnx"
            quantize_onnx_text(fp32, out, names, encoder.token_arrays, scheme)
            if scheme == "static":  # the gate's second choice (_OnnxText.fallback)
                dynamic = work / "text-int8-dynamic.onnx"
                quantize_onnx_text(fp32, dynamic, names, encoder.token_arrays, "dynamic")
            fp32.unlink()
        for served in work.glob("*.onnx"):  # each rewrite kept only where outputs stay identical
            lean_onnx_file(served, names, encoder.token_arrays)
            prefix_onnx_file(served, names, encoder.token_arrays)
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
    fallback = path.with_name("text-int8-dynamic.onnx") if path.name.endswith("-static.onnx") else None  # fmt: skip
    encoder.onnx_text = _OnnxText(
        path, names, threads, reference_texts, fp32.tokenize(PROBE_TEXTS),
        encoder.parity_min, force=encoder.quantize == "on", fallback=fallback,
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
