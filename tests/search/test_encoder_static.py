"""Static int8 for the ONNX text tower (MEEPO_CLIP_ONNX_INT8, default static): a query's vector
does not depend on the queries it is coalesced with (fixed activation scales, padding kept out),
the parity gate still decides at load, and the cache never hands one scheme's file to the other.
"""

import threading

import numpy as np
import pytest

from search import encoder_onnx
from search.encoder import PROBE_TEXTS, load_encoder
from search.encoder_int8 import CALIBRATION_TEXTS, onnx_int8_scheme

# Lengths from 1 to past the model's text length: a pass pads every row to its longest one.
TEXTS = [
    "rug", "red chair", "a fluffy striped salmon pillow for the sofa", "Navy LINEN Shirt", "🍵",
    "kids rain boots size 30, 2-pack (EU)!", "", " ".join(["long"] * 120), *PROBE_TEXTS,
]  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh_encoders(settings, monkeypatch):
    monkeypatch.delenv("MEEPO_CLIP_ONNX_INT8", raising=False)
    settings.MEEPO_CLIP_TEXT_COALESCE = True
    load_encoder.cache_clear()
    yield
    load_encoder.cache_clear()


def _int8_onnx(tiny_clip, scheme=None, settings=None):
    if scheme is not None:
        settings.MEEPO_CLIP_ONNX_INT8 = scheme
    encoder = load_encoder(str(tiny_clip), "cpu", "on", 1, 0.9, "onnx")
    assert (encoder.mode, encoder.text_runtime) == ("int8", "onnx"), encoder.describe()
    return encoder


def _max_diff(encoder, batched):
    alone = np.vstack([encoder.encode_texts([text]) for text in TEXTS])
    return float(np.abs(np.vstack(batched) - alone).max())


def test_static_is_the_default_scheme(settings):
    assert onnx_int8_scheme() == "static"
    settings.MEEPO_CLIP_ONNX_INT8 = "Dynamic"
    assert onnx_int8_scheme() == "dynamic"
    settings.MEEPO_CLIP_ONNX_INT8 = "fp16"
    assert onnx_int8_scheme() == "static"


def test_calibration_texts_are_fixed_and_not_the_gates():
    assert len(set(CALIBRATION_TEXTS)) == len(CALIBRATION_TEXTS) == 48
    assert not set(CALIBRATION_TEXTS) & set(PROBE_TEXTS)


def test_a_query_gets_its_alone_vector_in_any_pass(tiny_clip):
    encoder = _int8_onnx(tiny_clip)
    assert encoder.onnx_text.path.name == "text-int8-static.onnx"
    assert encoder.onnx_text.parity >= 0.9
    # one padded batch, the served coalesced pass (length groups), and reversed company
    assert _max_diff(encoder, encoder.encode_texts(TEXTS)) <= 1e-6
    assert _max_diff(encoder, encoder._encode_queries(TEXTS)) <= 1e-6
    assert _max_diff(encoder, encoder.encode_texts(TEXTS[::-1])[::-1]) <= 1e-6


def test_the_static_file_has_fixed_scales_and_fused_matmuls(tiny_clip):
    import onnx

    graph = onnx.load(str(_int8_onnx(tiny_clip).onnx_text.path)).graph
    ops = [node.op_type for node in graph.node]
    assert "DynamicQuantizeLinear" not in ops
    assert "MatMulInteger" not in ops
    assert ops.count("MatMulIntegerToFloat") >= 6  # q, k, v, out, fc1, fc2 per layer


def test_dynamic_int8_moves_with_its_company(tiny_clip, settings):
    """What static fixes: the same check fails for per-batch activation scales."""
    encoder = _int8_onnx(tiny_clip, "dynamic", settings)
    assert encoder.onnx_text.path.name == "text-int8-dynamic.onnx"
    assert _max_diff(encoder, encoder.encode_texts(TEXTS)) > 1e-5


def test_concurrent_coalesced_queries_get_their_alone_vectors(tiny_clip):
    import time

    from search.batching import Coalescer

    encoder = _int8_onnx(tiny_clip)
    alone = {text: encoder.encode_texts([text])[0] for text in TEXTS}
    barrier, got = threading.Barrier(len(TEXTS)), {}

    def held(texts):  # the served pass, its first one held until every other query queued
        deadline = time.monotonic() + 10
        while len(encoder.text_coalescer._queue) < len(TEXTS) - 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        return encoder._encode_queries(texts)

    encoder.text_coalescer = Coalescer(held, max_batch=16)

    def ask(text):
        barrier.wait()
        got[text] = encoder.text_coalescer(text)

    threads = [threading.Thread(target=ask, args=(text,)) for text in TEXTS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert encoder.text_coalescer.passes == 2  # one query, then the 15 others together
    for text in TEXTS:
        np.testing.assert_allclose(got[text], alone[text], rtol=0, atol=1e-6)


def test_each_scheme_has_its_own_cached_file(tiny_clip, settings):
    static = _int8_onnx(tiny_clip).onnx_text.path
    load_encoder.cache_clear()
    dynamic = _int8_onnx(tiny_clip, "dynamic", settings).onnx_text.path
    assert static.parent != dynamic.parent
    assert static.is_file()
    assert dynamic.is_file()
    assert encoder_onnx.ONNX_RECIPE >= 2  # recipe 1's dynamic files live under other keys


def test_the_gate_still_refuses_a_static_file_below_the_minimum(tiny_clip, caplog):
    encoder = _int8_onnx(tiny_clip)
    onnx = encoder.onnx_text
    strict = encoder_onnx._OnnxText(
        onnx.path, onnx.input_names, 1, onnx.reference, onnx.probe_inputs, 1.01, force=False
    )
    assert strict.session() is None
    assert strict.state.startswith("refused: parity")


def test_a_static_export_keeps_the_dynamic_file_as_the_gates_second_choice(tiny_clip, tmp_path):
    """A real tower whose outliers do not fit the fixed scales fails the gate with the static
    file; the dynamic one beside it is tried before torch (here the first file is unreadable)."""
    encoder = _int8_onnx(tiny_clip)
    onnx = encoder.onnx_text
    assert onnx.path.name == "text-int8-static.onnx"
    assert onnx.fallback == onnx.path.with_name("text-int8-dynamic.onnx")
    assert onnx.fallback.is_file()
    assert encoder.describe()["text_file"] == "text-int8-static.onnx"
    broken = tmp_path / "text-int8-static.onnx"
    broken.write_bytes(b"not an onnx file")
    second = encoder_onnx._OnnxText(
        broken, onnx.input_names, 1, onnx.reference, onnx.probe_inputs, 0.9, force=False,
        fallback=onnx.fallback,
    )  # fmt: skip
    assert second.session() is not None
    assert (second.state, second.path) == ("active", onnx.fallback)
    assert second.parity >= 0.9
    alone = second.run(encoder.tokenize(["red chair"]))
    assert alone.shape == (1, encoder.encode_texts(["red chair"]).shape[1])
