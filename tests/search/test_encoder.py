"""The CLIP encoder against the reference CLIPModel + CLIPProcessor pipeline on a tiny random model."""

import numpy as np
import pytest
from PIL import Image

from search import encoder as encoder_module
from search.encoder import encode_text, get_encoder
from search.exceptions import ModelNotAvailable


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [(40, 30), (64, 64), (23, 57), (100, 80), (32, 32)]
    return [
        Image.fromarray(rng.integers(0, 255, (*sizes[i % len(sizes)], 3), dtype=np.uint8), "RGB")
        for i in range(n)
    ]


def _reference(model_dir):
    import torch
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(model_dir).eval()
    processor = CLIPProcessor.from_pretrained(model_dir)

    def images(imgs):
        with torch.inference_mode():
            out = model.get_image_features(**processor(images=imgs, return_tensors="pt"))
        v = out.pooler_output
        return (v / v.norm(dim=-1, keepdim=True)).numpy()

    def texts(txts):
        with torch.inference_mode():
            out = model.get_text_features(**processor(text=txts, padding=True, return_tensors="pt"))
        v = out.pooler_output
        return (v / v.norm(dim=-1, keepdim=True)).numpy()

    return images, texts


def test_image_embeddings_match_reference_clip_pipeline(tiny_clip):
    ref_images, _ = _reference(tiny_clip)
    imgs = _images(5)
    got = get_encoder().encode_images(imgs)
    assert got.dtype == np.float32
    assert got.shape == (5, get_encoder().dim)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, ref_images(imgs), atol=1e-5)


def test_text_embeddings_match_reference_and_are_cached(tiny_clip):
    _, ref_texts = _reference(tiny_clip)
    texts = ["red leather handbag", "blue shoes", "emoji 👟 and عربى"]
    got = get_encoder().encode_texts(texts)
    np.testing.assert_allclose(got, ref_texts(texts), atol=1e-5)
    one = encode_text("red leather handbag")
    assert one.shape == (get_encoder().dim,)
    np.testing.assert_allclose(one, got[0], atol=1e-5)
    assert encode_text("red  leather handbag ") is one  # served from the cache


def test_long_text_is_truncated_not_an_error(tiny_clip):
    vector = get_encoder().encode_texts(["word " * 500])
    assert vector.shape == (1, get_encoder().dim)


def test_stream_matches_batch_encoding_and_reports_bad_items(tiny_clip):
    imgs = _images(7)
    items = [*range(7), "bad"]

    def load(item):
        if item == "bad":
            raise ValueError("not an image")
        return imgs[item]

    batches = list(get_encoder().encode_stream(items, load, batch_size=3))
    ok = [i for b in batches for i in b.items]
    failed = [i for b in batches for i, _ in b.failures]
    assert ok == list(range(7))
    assert failed == ["bad"]
    vectors = np.vstack([b.vectors for b in batches])
    np.testing.assert_allclose(vectors, get_encoder().encode_images(imgs), atol=1e-5)


def test_missing_model_is_one_actionable_error(settings, tmp_path):
    settings.MEEPO_CLIP_MODEL = str(tmp_path / "no-such-model")
    with pytest.raises(ModelNotAvailable, match="download_model"):
        get_encoder()


def test_bad_device_setting_is_a_clear_error(settings, tiny_clip):
    settings.MEEPO_CLIP_DEVICE = "tpu"
    with pytest.raises(ModelNotAvailable, match="MEEPO_CLIP_DEVICE"):
        get_encoder()


def test_quantized_mode_is_used_only_when_it_matches_fp32(settings, tiny_clip, caplog):
    settings.MEEPO_CLIP_QUANTIZE = True
    enc = get_encoder()
    if enc.mode == "int8":
        assert enc.parity >= encoder_module.PARITY_MIN
        fp32 = encoder_module.load_encoder(str(tiny_clip), "cpu", False, 0)
        imgs = _images(3)
        cos = np.sum(enc.encode_images(imgs) * fp32.encode_images(imgs), axis=1)
        assert cos.min() > 0.95
    else:
        assert "using fp32" in caplog.text


def test_quantized_mode_falls_back_to_fp32_when_parity_fails(settings, tiny_clip, monkeypatch):
    monkeypatch.setattr(encoder_module, "PARITY_MIN", 1.01)
    encoder_module.load_encoder.cache_clear()
    settings.MEEPO_CLIP_QUANTIZE = True
    assert get_encoder().mode == "fp32"
    encoder_module.load_encoder.cache_clear()


def test_auto_device_picks_cpu_without_cuda(settings, tiny_clip):
    import torch

    settings.MEEPO_CLIP_DEVICE = "auto"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert get_encoder().device == expected
    assert get_encoder().encode_texts(["x"]).dtype == np.float32
