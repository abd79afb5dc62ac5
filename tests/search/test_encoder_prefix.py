"""The first token's rows stored in the ONNX text tower (search.encoder_prefix): CLIP's causal
tower computes one row fewer per pass with bit-identical outputs (compared with the exported
graph in tests/search/test_encoder_graph.py); texts that do not all start with the same token
leave the file as it was.
"""

import numpy as np
import pytest

from search import encoder_onnx, encoder_prefix
from search.encoder import load_encoder


@pytest.fixture(autouse=True)
def _fresh_encoders(monkeypatch):
    monkeypatch.delenv("MEEPO_CLIP_ONNX_INT8", raising=False)
    load_encoder.cache_clear()
    yield
    load_encoder.cache_clear()


def _stored(path) -> list[str]:
    import onnx

    return [i.name for i in onnx.load(str(path)).graph.initializer if i.name.startswith("prefix/")]


def _exported_copy(tiny_clip, tmp_path, monkeypatch):
    """The served static file as exported and made lean, without stored rows, and its encoder."""
    monkeypatch.setattr(encoder_onnx, "prefix_onnx_file", lambda *args: False)
    encoder = load_encoder(str(tiny_clip), "cpu", "on", 1, 0.9, "onnx")
    monkeypatch.undo()
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(encoder.onnx_text.path.read_bytes())
    assert not _stored(copy)
    return encoder, copy


def test_the_served_static_file_stores_the_first_tokens_rows(tiny_clip):
    encoder = load_encoder(str(tiny_clip), "cpu", "on", 1, 0.9, "onnx")
    assert encoder.onnx_text.path.name == "text-int8-static.onnx"
    stored = _stored(encoder.onnx_text.path)
    # keys and values of both layers, and the residual row before the last LayerNormalization
    assert sum(name.endswith("/row0") for name in stored) == 2 * 2 + 1


def test_the_rewrite_keeps_every_output_of_the_graph_it_was_given(tiny_clip, tmp_path, monkeypatch):  # fmt: skip
    import onnxruntime as ort

    encoder, copy = _exported_copy(tiny_clip, tmp_path, monkeypatch)
    before = ort.InferenceSession(str(copy), providers=["CPUExecutionProvider"])
    names = encoder.onnx_text.input_names
    assert encoder_prefix.prefix_onnx_file(copy, names, encoder.token_arrays)
    after = ort.InferenceSession(str(copy), providers=["CPUExecutionProvider"])
    texts = ["", "rug", "red chair", "kids rain boots size 30, 2-pack (EU)!", " ".join(["x"] * 90)]  # fmt: skip
    for batch in [[text] for text in texts] + [texts, texts[::-1]]:
        feeds = encoder.token_arrays(batch)
        assert np.array_equal(before.run(None, feeds)[0], after.run(None, feeds)[0])


def test_texts_without_a_common_first_token_leave_the_file_alone(tiny_clip, tmp_path, monkeypatch):  # fmt: skip
    encoder, copy = _exported_copy(tiny_clip, tmp_path, monkeypatch)
    original = copy.read_bytes()

    def without_start_token(texts):  # a tokenizer whose texts begin with their first word
        return {name: array[:, 1:] for name, array in encoder.token_arrays(texts).items()}

    names = encoder.onnx_text.input_names
    assert not encoder_prefix.prefix_onnx_file(copy, names, without_start_token)
    assert copy.read_bytes() == original


def test_an_unknown_layout_is_left_alone(tiny_clip, tmp_path, monkeypatch):
    encoder, copy = _exported_copy(tiny_clip, tmp_path, monkeypatch)
    monkeypatch.setattr(encoder_prefix, "_attention", lambda model: None)
    assert not encoder_prefix.prefix_onnx_file(copy, encoder.onnx_text.input_names, encoder.token_arrays)  # fmt: skip
    assert not _stored(copy)


@pytest.mark.parametrize(
    ("shapes", "lengths", "axis"),
    [
        ([(3, 2, 16, 7), (5, 2, 16, 11)], [7, 11], 3),
        ([(3, 2, 7, 16), (5, 2, 11, 16)], [7, 11], 2),
        ([(3, 7, 32), (5, 11, 32)], [7, 11], 1),
        ([(3, 7, 7), (5, 11, 11)], [7, 11], None),  # two candidates: not guessed
        ([(3, 32), (5, 32)], [7, 11], None),
    ],
)
def test_token_axis(shapes, lengths, axis):
    assert encoder_prefix._token_axis(shapes, lengths) == axis
