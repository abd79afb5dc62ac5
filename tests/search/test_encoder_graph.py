"""Lean ONNX text towers (search.encoder_graph): constant Reshape targets instead of the exported
shape arithmetic, served only where every query's vector stays bit-identical, alone and in any
coalesced pass; a graph the rewrite would change is left as exported. The served files also
store the first token's rows (search.encoder_prefix, tests/search/test_encoder_prefix.py): the
vectors here are compared with both rewrites on against both off.
"""

import numpy as np
import pytest

from search import encoder_graph, encoder_onnx
from search.encoder import load_encoder
from tests.search.test_encoder_static import TEXTS as STATIC_TEXTS
from tests.search.test_encoder_static import _fresh_encoders  # noqa: F401  (autouse fixture)

# test_encoder_static's texts (lengths 1 to past the model's text length, emoji, the empty
# text) and its fixture (fresh encoders, default int8 scheme, coalescing on), plus CJK.
TEXTS = [*STATIC_TEXTS, "椅子 红色"]


def _onnx_encoder(tiny_clip, quantize="on"):
    encoder = load_encoder(str(tiny_clip), "cpu", quantize, 1, 0.9, "onnx")
    assert encoder.text_runtime == "onnx", encoder.describe()
    return encoder


def _vectors(encoder):
    """Each text alone, one padded batch, the served pass in length groups, reversed company."""
    return [
        np.vstack([encoder.encode_texts([text]) for text in TEXTS]),
        encoder.encode_texts(TEXTS),
        np.vstack(encoder._encode_queries(TEXTS)),
        encoder.encode_texts(TEXTS[::-1])[::-1],
    ]


def _exported(tiny_clip, settings, tmp_path, monkeypatch, lean: bool, quantize="on"):
    settings.MEEPO_DATA_DIR = str(tmp_path / ("lean" if lean else "exported"))
    if not lean:  # as exported: neither rewrite (search.encoder_prefix is the second)
        monkeypatch.setattr(encoder_onnx, "lean_onnx_file", lambda *args: False)
        monkeypatch.setattr(encoder_onnx, "prefix_onnx_file", lambda *args: False)
    load_encoder.cache_clear()
    encoder = _onnx_encoder(tiny_clip, quantize)
    monkeypatch.undo()
    return encoder


@pytest.mark.parametrize("quantize", ["on", "off"])
def test_lean_vectors_are_bit_identical_to_the_exported_graphs(tiny_clip, settings, tmp_path, monkeypatch, quantize):  # fmt: skip
    settings.MEEPO_CLIP_MODEL = str(tiny_clip)
    exported = _exported(tiny_clip, settings, tmp_path, monkeypatch, lean=False, quantize=quantize)
    before = _vectors(exported)
    lean = _exported(tiny_clip, settings, tmp_path, monkeypatch, lean=True, quantize=quantize)
    assert lean.onnx_text.path != exported.onnx_text.path
    after = _vectors(lean)
    for a, b in zip(before, after, strict=True):
        assert np.array_equal(a, b)
    # the static scheme's guarantee holds in the lean graph too: alone == in any pass
    if quantize == "on":
        for batched in after[1:]:
            assert np.array_equal(batched, after[0])


def test_the_served_files_have_no_shape_arithmetic_left(tiny_clip):
    import onnx

    encoder = _onnx_encoder(tiny_clip)
    for path in (encoder.onnx_text.path, encoder.onnx_text.fallback):
        graph = onnx.load(str(path)).graph
        constants = {i.name for i in graph.initializer}
        layers = [n for n in graph.node if n.op_type == "Reshape" and "layers." in n.name]
        assert layers, path.name
        assert all(n.input[1] in constants for n in layers), path.name
        # the shapes left are the attention mask's, computed once, not per layer (the stored
        # first-token rows' Concats, search.encoder_prefix, are not shape arithmetic)
        arithmetic = ("Shape", "Concat", "Unsqueeze")
        left = [n.name for n in graph.node if n.op_type in arithmetic and "layers." in n.name]
        assert not [name for name in left if not name.startswith("prefix/")]


def test_a_rewrite_that_changes_outputs_leaves_the_file_as_exported(tiny_clip, tmp_path, monkeypatch, caplog):  # fmt: skip
    monkeypatch.setattr(encoder_onnx, "lean_onnx_file", lambda *args: False)
    monkeypatch.setattr(encoder_onnx, "prefix_onnx_file", lambda *args: False)
    encoder = _onnx_encoder(tiny_clip)
    monkeypatch.undo()
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(encoder.onnx_text.path.read_bytes())
    monkeypatch.setattr(encoder_graph, "_same_outputs", lambda *args: False)
    names = encoder.onnx_text.input_names
    assert not encoder_graph.lean_onnx_file(copy, names, encoder.token_arrays)
    assert copy.read_bytes() == encoder.onnx_text.path.read_bytes()
    assert "keeping the exported graph" in caplog.text
    monkeypatch.undo()
    assert encoder_graph.lean_onnx_file(copy, names, encoder.token_arrays)


def test_an_unreadable_file_is_left_alone(tiny_clip, tmp_path, caplog):
    encoder = _onnx_encoder(tiny_clip)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    assert not encoder_graph.lean_onnx_file(broken, ("input_ids",), encoder.token_arrays)
    assert broken.read_bytes() == b"not an onnx file"
    assert "lean ONNX graph unavailable" in caplog.text


@pytest.mark.parametrize(
    ("ins", "outs", "target"),
    [
        ([(3, 7, 512), (5, 11, 512)], [(3, 7, 8, 64), (5, 11, 8, 64)], [0, 0, 8, 64]),
        ([(3, 7, 8, 64), (5, 11, 8, 64)], [(3, 7, 512), (5, 11, 512)], [0, 0, 512]),
        ([(3, 8, 7, 64), (5, 8, 11, 64)], [(3, 8, 7, 64), (5, 8, 11, 64)], "same"),
        ([(3, 7, 8, 64), (5, 11, 8, 64)], [(21, 512), (55, 512)], [-1, 512]),
        ([(3, 7), (5, 11)], [(21,), (55,)], [-1]),
        ([(3, 7, 4), (5, 11, 4)], [(7, 3, 4), (11, 5, 4)], None),  # two dims that move: no
        ([(3, 7), (5, 11)], [(3, 7, 1), (5, 11)], None),  # ranks differ between probes
    ],
)
def test_constant_targets_from_probe_shapes(ins, outs, target):
    assert encoder_graph._target(ins, outs) == target
