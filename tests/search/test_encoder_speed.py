"""The cheap text path: the `tokenizers` backend called directly gives exactly the processor's
arrays (or is not used), and the vectors do not change; ONNX Runtime's pools never spin."""

import numpy as np
import pytest

from search import encoder_tokens
from search.encoder import PROBE_TEXTS, load_encoder
from search.encoder_model import TEXT_PAD_SPREAD
from search.encoder_tokens import CHECK_TEXTS, direct_tokenizer

TEXTS = [
    "red chair", "a fluffy striped salmon pillow for the sofa", "fork", "🍵", "שולחן עץ",
    "Café CRÈME", "", "  spaced   out  ", " ".join(["long"] * 120), *PROBE_TEXTS,
]  # fmt: skip


@pytest.fixture
def unshared(monkeypatch):
    """direct_tokenizer checks again instead of answering from its per-tokenizer cache."""
    import weakref

    monkeypatch.setattr(encoder_tokens, "_checked", weakref.WeakKeyDictionary())


def _same_arrays(encoder, texts):
    reference = encoder.tokenize(texts)
    got = encoder.token_arrays(texts)
    assert set(got) == set(reference)
    for key in reference:
        assert got[key].dtype == np.int64
        np.testing.assert_array_equal(got[key], reference[key].numpy())


@pytest.fixture(scope="module", params=["clip", "siglip", "siglip2", "chinese_clip", "altclip"])
def family_dir(request, tmp_path_factory):
    from demo.random_model import save_random_model

    path = tmp_path_factory.mktemp(f"speed-{request.param}")
    return request.param, save_random_model(path, family=request.param, size="tiny")


def test_direct_tokens_are_the_processors_for_every_family(family_dir):
    family, model_dir = family_dir
    encoder = load_encoder(str(model_dir), "cpu", "off", 1)
    for text in TEXTS:
        _same_arrays(encoder, [text])
    _same_arrays(encoder, TEXTS)  # padded batch
    _same_arrays(encoder, TEXTS[:3])
    # SigLIP ships a sentencepiece (slow) tokenizer: the processor serves it, only slower.
    assert bool(encoder._direct_tokens) == (family != "siglip")


def test_one_checked_copy_per_processor(tiny_clip):
    import dataclasses

    int8 = load_encoder(str(tiny_clip), "cpu", "on", 1, 0.0, "torch")
    # its fp32 reference (same processor) checked the tokenizer first: int8 reuses that copy
    assert int8._direct() is not None
    assert direct_tokenizer(dataclasses.replace(int8)) is int8._direct()
    assert len(encoder_tokens._checked[int8.processor.tokenizer]) == 1


def test_direct_tokens_leave_the_vectors_unchanged(tiny_clip):
    encoder = load_encoder(str(tiny_clip), "cpu", "off", 1)
    direct = encoder.encode_texts(TEXTS)
    assert encoder._direct_tokens
    encoder._direct_tokens = False  # the processor's path
    try:
        np.testing.assert_array_equal(encoder.encode_texts(TEXTS), direct)
    finally:
        encoder._direct_tokens = None


def test_onnx_vectors_are_the_same_with_direct_tokens(tiny_clip):
    encoder = load_encoder(str(tiny_clip), "cpu", "on", 1, 0.0, "onnx")
    assert encoder.text_runtime == "onnx"
    direct = encoder.encode_texts(TEXTS)
    encoder._direct_tokens = False
    try:
        np.testing.assert_array_equal(encoder.encode_texts(TEXTS), direct)
    finally:
        encoder._direct_tokens = None
    options = encoder.onnx_text.session().get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 1


def test_a_direct_tokenizer_that_disagrees_is_not_used(tiny_clip, monkeypatch, unshared):
    encoder = load_encoder(str(tiny_clip), "cpu", "off", 1)
    build = encoder_tokens._build

    def off_by_one_padding(enc):
        candidate = build(enc)
        candidate.pad["input_ids"] += 1
        return candidate

    monkeypatch.setattr(encoder_tokens, "_build", off_by_one_padding)
    assert direct_tokenizer(encoder) is None
    monkeypatch.setattr(encoder_tokens, "CHECK_TEXTS", ("one",))  # never pads: the check passes
    encoder_tokens._checked.clear()
    assert direct_tokenizer(encoder) is not None
    assert len(CHECK_TEXTS) > 1


def test_a_tokenizer_without_a_fast_backend_keeps_the_processor(tiny_clip, monkeypatch, unshared):
    encoder = load_encoder(str(tiny_clip), "cpu", "off", 1)
    monkeypatch.setattr(type(encoder.processor.tokenizer), "is_fast", property(lambda self: False))
    assert direct_tokenizer(encoder) is None


def test_a_failing_backend_keeps_the_processor(tiny_clip, monkeypatch, unshared):
    encoder = load_encoder(str(tiny_clip), "cpu", "off", 1)

    def broken(enc):
        raise RuntimeError("no backend")

    monkeypatch.setattr(encoder_tokens, "_build", broken)
    assert direct_tokenizer(encoder) is None


def test_a_coalesced_pass_runs_far_apart_lengths_in_separate_forwards(tiny_clip, monkeypatch):
    encoder = load_encoder(str(tiny_clip), "cpu", "off", 1)
    long = " ".join(["word"] * 40)
    texts = ["red chair", long, "fork", "blue lamp shade", long + " two"]
    alone = {text: encoder.encode_texts([text])[0] for text in texts}
    padding = []
    forward = encoder._forward_texts

    def recording(inputs):
        mask = inputs["attention_mask"]
        padding.append(int((mask.shape[1] - mask.sum(axis=1)).max()))
        return forward(inputs)

    monkeypatch.setattr(encoder, "_forward_texts", recording)
    got = encoder._encode_queries(texts)
    assert len(padding) >= 2  # the long ones apart from the short ones
    assert max(padding) <= TEXT_PAD_SPREAD
    for text, vector in zip(texts, got, strict=True):
        np.testing.assert_allclose(vector, alone[text], atol=1e-5)


def test_length_groups_keep_order_within_the_spread(tiny_clip):
    encoder = load_encoder(str(tiny_clip), "cpu", "off", 1)
    direct = encoder._direct()
    encodings = direct.encode(
        ["a b c d e f g h i j k l", "a", "a b", "a b c d e f g h i j k l m n"]
    )
    assert direct.groups(encodings, 8) == [[1, 2], [0, 3]]
    assert direct.groups(encodings, 100) == [[1, 2, 0, 3]]
    assert direct.groups(encodings[:1], 0) == [[0]]


@pytest.mark.parametrize(
    ("value", "size"), [(None, 16), (True, 16), ("on", 16), (False, 1), ("false", 1), ("0", 1)]
)
def test_coalescing_switch(settings, monkeypatch, value, size):
    from search.encoder_model import text_batch_max

    monkeypatch.delenv("MEEPO_CLIP_TEXT_COALESCE", raising=False)
    settings.MEEPO_CLIP_TEXT_COALESCE = value
    assert text_batch_max() == size
    del settings.MEEPO_CLIP_TEXT_COALESCE
    monkeypatch.setenv("MEEPO_CLIP_TEXT_COALESCE", "false")
    assert text_batch_max() == 1


def test_without_coalescing_a_query_gets_its_alone_vector_under_concurrency(settings, tiny_clip):
    import dataclasses
    import threading

    served = load_encoder(str(tiny_clip), "cpu", "on", 1, 0.0, "onnx")
    settings.MEEPO_CLIP_TEXT_COALESCE = False
    encoder = dataclasses.replace(served)  # a new coalescer, under the setting
    texts = [f"{colour} {thing}" for colour in ("red", "blue", "green") for thing in ("chair", "lamp", "rug", "striped cushion")]  # fmt: skip
    alone = {text: encoder.encode_texts([text])[0] for text in texts}
    barrier, got = threading.Barrier(len(texts)), {}

    def ask(text):
        barrier.wait()
        got[text] = encoder.text_coalescer(text)

    threads = [threading.Thread(target=ask, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert encoder.text_coalescer.passes == len(texts)
    for text in texts:
        np.testing.assert_array_equal(got[text], alone[text])  # exactly: no company


def test_the_same_query_twice_in_a_pass_is_encoded_once(tiny_clip, monkeypatch):
    encoder = load_encoder(str(tiny_clip), "cpu", "off", 1)
    rows = []
    forward = encoder._forward_texts

    def recording(inputs):
        rows.append(len(inputs["input_ids"]))
        return forward(inputs)

    monkeypatch.setattr(encoder, "_forward_texts", recording)
    got = encoder._encode_queries(["red chair", "fork", "red chair"])
    assert sum(rows) == 2
    np.testing.assert_array_equal(got[0], got[2])
    np.testing.assert_allclose(got[1], encoder.encode_texts(["fork"])[0], atol=1e-5)
