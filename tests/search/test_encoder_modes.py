"""Encoder precision and text runtime: int8 and ONNX Runtime are used only behind the parity gate.

The suite runs fp32 torch by default (pyproject's pytest env), so these tests set
MEEPO_CLIP_QUANTIZE / MEEPO_CLIP_TEXT_RUNTIME / MEEPO_CLIP_PARITY_MIN themselves. The tiny
random CLIP's int8 parity is ≈ 0.999, so a gate of 0.9 passes and 1.01 cannot.
"""

import logging
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from search import encoder as encoder_module
from search import encoder_onnx
from search.encoder import get_encoder, load_encoder, quantize_mode
from search.exceptions import ModelNotAvailable

TEXTS = ["red leather handbag", "blue shoes", "a much longer wooden kitchen table for six"]


@pytest.fixture(autouse=True)
def _fresh_encoders():
    load_encoder.cache_clear()
    yield
    load_encoder.cache_clear()


@pytest.fixture
def modes(settings, tiny_clip):
    def set_modes(quantize="auto", runtime="torch", parity_min=0.9):
        settings.MEEPO_CLIP_QUANTIZE = quantize
        settings.MEEPO_CLIP_TEXT_RUNTIME = runtime
        settings.MEEPO_CLIP_PARITY_MIN = parity_min
        return get_encoder()

    return set_modes


def _fp32(tiny_clip):  # the model path
    return load_encoder(str(tiny_clip), "cpu", "off", 0, 0.99, "torch")


def _min_cos(a, b):
    return float(np.min(np.sum(a * b, axis=1)))


def test_auto_serves_int8_when_parity_passes(modes, tiny_clip):
    enc = modes("auto")
    assert enc.mode == "int8"
    assert enc.parity >= 0.9
    assert enc.describe()["precision"] == "int8"
    assert enc.describe()["requested"] == "auto"
    assert _min_cos(enc.encode_texts(TEXTS), _fp32(tiny_clip).encode_texts(TEXTS)) > 0.95


def test_auto_falls_back_to_fp32_with_a_warning_when_parity_fails(modes, tiny_clip, caplog):
    with caplog.at_level(logging.WARNING, logger="search.encoder"):
        enc = modes("auto", parity_min=1.01)
    assert enc.mode == "fp32"
    assert "using fp32" in caplog.text
    assert enc.parity is not None  # measured, reported
    assert enc.parity < 1.01
    assert any("int8 parity" in note for note in enc.describe()["notes"])
    np.testing.assert_allclose(
        enc.encode_texts(TEXTS), _fp32(tiny_clip).encode_texts(TEXTS), atol=1e-6
    )


def test_on_forces_int8_even_below_the_gate(modes):
    enc = modes("on", parity_min=1.01)
    assert enc.mode == "int8"
    assert enc.parity < 1.01


def test_off_is_fp32_without_a_probe(modes, monkeypatch):
    monkeypatch.setattr(encoder_module, "_quantized", lambda *a: pytest.fail("probed"))
    enc = modes("off")
    assert (enc.mode, enc.parity) == ("fp32", None)


@pytest.mark.parametrize(
    ("value", "mode"),
    [(True, "auto"), (False, "off"), ("true", "auto"), ("False", "off"), ("ON", "on")],
)
def test_quantize_setting_spellings(value, mode):
    assert quantize_mode(value) == mode


def test_unknown_quantize_setting_is_a_clear_error(modes):
    with pytest.raises(ModelNotAvailable, match="MEEPO_CLIP_QUANTIZE"):
        modes("int4")


def test_onnx_text_tower_is_used_when_it_passes_the_gate(modes, tiny_clip):
    enc = modes("auto", runtime="auto")
    assert (enc.mode, enc.text_runtime) == ("int8", "onnx")
    assert enc.text_parity >= 0.9
    got = enc.encode_texts(TEXTS)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert _min_cos(got, _fp32(tiny_clip).encode_texts(TEXTS)) > 0.95
    # images still go through torch int8
    assert enc.encode_images(encoder_module._probe_images(32, n=2)).shape == (2, enc.dim)


def test_onnx_fp32_matches_torch_fp32(modes, tiny_clip):
    enc = modes("off", runtime="onnx")
    assert (enc.mode, enc.text_runtime) == ("fp32", "onnx")
    np.testing.assert_allclose(
        enc.encode_texts(TEXTS), _fp32(tiny_clip).encode_texts(TEXTS), atol=1e-4
    )


def test_onnx_below_the_gate_falls_back_to_torch(modes, caplog):
    with caplog.at_level(logging.WARNING, logger="search.encoder"):
        enc = modes("off", runtime="onnx", parity_min=1.01)
    assert enc.text_runtime == "torch"
    assert enc.onnx_text is None
    assert "ONNX text tower disagrees" in caplog.text


def test_auto_runtime_without_int8_stays_torch(modes):
    enc = modes("auto", runtime="auto", parity_min=1.01)  # int8 refused: fp32 torch
    assert (enc.mode, enc.text_runtime) == ("fp32", "torch")


def test_export_failure_falls_back_to_torch(modes, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(encoder_onnx, "export_text_onnx", broken)
    with caplog.at_level(logging.WARNING, logger="search.encoder"):
        enc = modes("auto", runtime="auto")
    assert (enc.mode, enc.text_runtime) == ("int8", "torch")
    assert "ONNX text tower unavailable" in caplog.text


def test_missing_onnxruntime_keeps_torch(modes, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxruntime" else real(name, *a),
    )
    enc = modes("auto", runtime="auto")
    assert (enc.mode, enc.text_runtime) == ("int8", "torch")
    assert any("onnxruntime not installed" in n for n in enc.notes)


def test_export_is_cached_per_model(modes, monkeypatch):
    import torch

    first = modes("auto", runtime="auto")
    assert first.text_runtime == "onnx"
    load_encoder.cache_clear()
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: pytest.fail("exported twice"))
    second = modes("auto", runtime="auto")
    assert second.text_runtime == "onnx"
    assert second.onnx_text.path == first.onnx_text.path
    np.testing.assert_allclose(second.encode_texts(TEXTS), first.encode_texts(TEXTS), atol=1e-6)


def test_concurrent_queries_share_onnx_passes_and_get_their_own_vectors(modes):
    enc = modes("auto", runtime="auto")
    texts = [f"{colour} {thing}" for colour in ("red", "blue", "green", "black") for thing in ("chair", "lamp", "rug")]  # fmt: skip
    alone = {t: enc.encode_texts([t])[0] for t in texts}
    barrier = threading.Barrier(len(texts))
    got = {}

    def ask(text):
        barrier.wait()
        got[text] = enc.text_coalescer(text)

    threads = [threading.Thread(target=ask, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Static ONNX int8 gives the alone vector exactly (tests/search/test_encoder_static.py);
    # dynamic int8 quantises per batch: the gate's tolerance, never another query's vector.
    for text in texts:
        assert float(got[text] @ alone[text]) > 0.99
        others = [float(got[text] @ alone[o]) for o in texts if o != text]
        assert float(got[text] @ alone[text]) > max(others)
    assert enc.text_coalescer.passes <= len(texts)


@pytest.mark.django_db
def test_health_reports_the_encoder_in_use(modes, client, settings):
    from search.health import check_health

    settings.MEEPO_CLIP_QUANTIZE = "auto"
    before = check_health().model.info["encoder"]
    assert before["requested"] == "auto"  # not loaded yet: what the settings ask for
    assert "precision" not in before
    modes("auto", runtime="auto")
    info = check_health().model.info["encoder"]
    assert (info["precision"], info["text_runtime"]) == ("int8", "onnx")
    assert info["parity"] >= 0.9
    body = client.get("/healthz", REMOTE_ADDR="127.0.0.1").json()
    assert body["model"]["info"]["encoder"]["precision"] == "int8"


def test_deferred_onnx_exports_in_a_subprocess_and_opens_in_the_worker(modes, monkeypatch):
    """The gunicorn master (DEFER_ONNX) never imports onnxruntime: a forked child of a process
    that did hangs or aborts at exit. It exports in a subprocess; post_fork activates."""
    monkeypatch.setattr(encoder_onnx, "DEFER_ONNX", True)
    monkeypatch.setattr(encoder_onnx, "_export", lambda *a: pytest.fail("exported in-process"))
    enc = modes("auto", runtime="auto")
    assert enc.onnx_text.path.is_file()  # written by the subprocess
    assert enc.describe()["text_runtime"].startswith("onnx (pending")
    encoder_module.activate_text_runtime(enc)  # what post_fork does in each worker
    assert enc.describe()["text_runtime"] == "onnx"
    assert enc.describe()["text_parity"] >= 0.9
    assert enc.encode_texts(TEXTS).shape == (3, enc.dim)


def test_deferred_onnx_refused_in_the_worker_falls_back_to_torch(modes, tiny_clip, monkeypatch):
    monkeypatch.setattr(encoder_onnx, "DEFER_ONNX", True)
    enc = modes("off", runtime="onnx", parity_min=1.01)
    assert enc.onnx_text is not None  # attached, not yet gated
    # the first text query gates it, is refused and is answered by torch
    np.testing.assert_allclose(
        enc.encode_texts(TEXTS), _fp32(tiny_clip).encode_texts(TEXTS), atol=1e-6
    )
    assert enc.onnx_text.state_here().startswith("refused: parity")
    encoder_module.activate_text_runtime(enc)
    assert enc.onnx_text is None
    assert enc.describe()["text_runtime"] == "torch"
    assert any("parity" in note for note in enc.notes)


def _in_a_fresh_process(code: str, tiny_clip, tmp_path) -> subprocess.CompletedProcess:
    """Run `code` in a new interpreter with the tiny model, int8 and the ONNX runtime on `auto`:
    what a gunicorn master sees at start-up, without this test process's imports."""
    env = {
        **os.environ,
        "MEEPO_CLIP_MODEL": str(tiny_clip),
        "MEEPO_CLIP_QUANTIZE": "auto",
        "MEEPO_CLIP_TEXT_RUNTIME": "auto",
        "MEEPO_CLIP_PARITY_MIN": "0.9",
        "MEEPO_DATA_DIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )


def test_the_gunicorn_master_never_imports_onnxruntime(tiny_clip, tmp_path):
    """Regression: a master that imported onnxruntime (even for its version) made every
    worker abort at exit ("std::system_error: Invalid argument", SIGABRT)."""
    code = (
        "import sys, django; django.setup(); from search import encoder as e, encoder_onnx; "
        "encoder_onnx.DEFER_ONNX = True; enc = e.get_encoder(); "
        "assert enc.onnx_text is not None, enc.describe(); "
        "assert 'onnxruntime' not in sys.modules, 'imported'; print(enc.describe()['text_runtime'])"
    )
    out = _in_a_fresh_process(code, tiny_clip, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().startswith("onnx (pending")


def test_int8_quantises_a_second_mapped_copy_in_place(modes, monkeypatch):
    """Regression: quantize_dynamic's default deep copy of the float model put the whole model
    in anonymous memory (+700 MB for ViT-B/32 in the gunicorn master); the int8 model is now a
    second from_pretrained (file-mapped weights) quantised in place."""
    import torch.ao.quantization as tq

    calls = []
    real = tq.quantize_dynamic

    def spy(model, *args, **kwargs):
        calls.append((model, kwargs.get("inplace")))
        return real(model, *args, **kwargs)

    monkeypatch.setattr(tq, "quantize_dynamic", spy)
    enc = modes("auto")
    assert enc.mode == "int8"
    ((model, inplace),) = calls
    assert inplace is True
    assert model is enc.model  # the quantised object itself, no copy
    fp32 = _fp32(enc.model_name)
    assert fp32.model is not enc.model


def test_the_real_gunicorn_when_ready_defers_onnx(tiny_clip, tmp_path):
    """deploy/gunicorn.conf.py's own `when_ready` must set the flag the ONNX module reads
    (search.encoder_onnx.DEFER_ONNX), so the master exports in a subprocess and never imports
    onnxruntime; its post_fork then opens the session in the worker."""
    from pathlib import Path

    conf = Path(__file__).resolve().parents[2] / "deploy" / "gunicorn.conf.py"
    code = (
        "import sys, logging, django; django.setup(); from types import SimpleNamespace; "
        f"conf = {{}}; exec(open({str(conf)!r}).read(), conf); "
        "server = SimpleNamespace(log=logging.getLogger('gunicorn')); conf['when_ready'](server); "
        "from search.encoder import loaded_encoder; enc = loaded_encoder(); "
        "assert enc is not None and enc.onnx_text is not None, enc; "
        "assert 'onnxruntime' not in sys.modules, 'imported in the master'; "
        "conf['post_fork'](server, None); print(enc.describe()['text_runtime'])"
    )
    out = _in_a_fresh_process(code, tiny_clip, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "onnx"
