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


def test_quantized_mode_falls_back_to_fp32_when_parity_fails(settings, tiny_clip):
    encoder_module.load_encoder.cache_clear()
    settings.MEEPO_CLIP_PARITY_MIN = 1.01
    settings.MEEPO_CLIP_QUANTIZE = True
    assert get_encoder().mode == "fp32"
    encoder_module.load_encoder.cache_clear()


def test_auto_device_picks_cpu_without_cuda(settings, tiny_clip):
    import torch

    settings.MEEPO_CLIP_DEVICE = "auto"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert get_encoder().device == expected
    assert get_encoder().encode_texts(["x"]).dtype == np.float32


# --- Other model families, loaded through the same AutoModel/AutoProcessor path ---------------


@pytest.fixture(scope="module", params=["siglip", "siglip2", "chinese_clip", "altclip"])
def tiny_family_dir(request, tmp_path_factory):
    from demo.random_model import save_random_model

    path = tmp_path_factory.mktemp(f"tiny-{request.param}")
    return request.param, save_random_model(path, family=request.param, size="tiny")


def _family_reference(model_dir, family):
    """What the transformers documentation does: for SigLIP max_length padding (64 tokens in
    the released models; the tiny model reads 16) and lower-cased text for SigLIP 2; the
    processor's defaults (longest padding) for the CLIP-like ChineseCLIP and AltCLIP."""
    import torch
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(model_dir).eval()
    processor = AutoProcessor.from_pretrained(model_dir, backend="pil")

    def unit(out):
        return torch.nn.functional.normalize(out.pooler_output, dim=-1).numpy()

    def images(imgs):
        with torch.inference_mode():
            return unit(model.get_image_features(**processor(images=imgs, return_tensors="pt")))

    def texts(txts):
        if family == "siglip2":
            txts = [t.lower() for t in txts]
        if family.startswith("siglip"):
            padding = {"padding": "max_length", "max_length": 16}
        else:
            padding = {"padding": True, "max_length": 64}
        inputs = processor(text=txts, truncation=True, return_tensors="pt", **padding)
        with torch.inference_mode():
            return unit(model.get_text_features(**inputs))

    return images, texts


def test_other_families_match_the_reference_forward(settings, tiny_family_dir):
    family, model_dir = tiny_family_dir
    settings.MEEPO_CLIP_MODEL = str(model_dir)
    encoder = get_encoder()
    assert encoder.model.config.model_type == family
    dim = 32 if family.startswith("siglip") else 16
    assert encoder.dim == dim  # from the probe, not from one family's config field
    tokenizer = {
        "siglip": "SiglipTokenizer",
        "siglip2": "Siglip2Tokenizer",
        "chinese_clip": "BertTokenizer",
        "altclip": "XLMRobertaTokenizer",
    }[family]
    assert type(encoder.processor.tokenizer).__name__ == tokenizer  # the families' own kinds
    ref_images, ref_texts = _family_reference(model_dir, family)
    imgs = _images(5)
    np.testing.assert_allclose(encoder.encode_images(imgs), ref_images(imgs), atol=1e-5)
    texts = ["Navy linen shirt", "chemise en lin bleu marine", "紺色のリネンシャツ", "قميص كتان"]
    got = encoder.encode_texts(texts)
    np.testing.assert_allclose(got, ref_texts(texts), atol=1e-5)
    assert len({tuple(np.round(v, 4)) for v in got}) == 4  # other scripts are not all <unk>
    assert encoder.encode_texts(["word " * 500]).shape == (1, dim)  # truncated, no error
    stream = list(encoder.encode_stream(range(5), lambda i: imgs[i], batch_size=2))
    np.testing.assert_allclose(
        np.vstack([b.vectors for b in stream]), encoder.encode_images(imgs), atol=1e-5
    )


def test_other_families_quantize_cleanly(tiny_family_dir):
    _, model_dir = tiny_family_dir
    enc = encoder_module.load_encoder(str(model_dir), "cpu", True, 0)
    fp32 = encoder_module.load_encoder(str(model_dir), "cpu", False, 0)
    imgs = _images(3)
    cos = np.sum(enc.encode_images(imgs) * fp32.encode_images(imgs), axis=1)
    assert enc.mode == "int8"
    assert cos.min() > 0.95


def test_a_model_without_image_and_text_towers_is_refused(settings, tmp_path):
    from transformers import BertConfig, BertModel

    from demo.random_model import _gemma_tokenizer

    config = BertConfig(
        vocab_size=300, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    BertModel(config).save_pretrained(tmp_path)
    _gemma_tokenizer()[0].save_pretrained(tmp_path)
    settings.MEEPO_CLIP_MODEL = str(tmp_path)
    with pytest.raises(ModelNotAvailable, match="not an image-text dual encoder"):
        get_encoder()


@pytest.mark.django_db
def test_a_siglip2_model_runs_the_whole_pipeline_and_the_index_records_it(settings, tmp_path):
    from demo.random_model import save_random_model
    from pipeline.embed import embed_images
    from pipeline.indexing import build_index
    from search import services
    from search.index import get_index, reset_index_cache
    from search.models import Embedding
    from tests.factories import ImageAssetFactory, ProductFactory, ProductImageFactory

    settings.MEEPO_CLIP_MODEL = str(save_random_model(tmp_path / "s2", family="siglip2"))
    for color in ("red", "green", "blue"):
        asset = ImageAssetFactory(thumbnail__color=color)
        ProductImageFactory(product=ProductFactory(title=f"{color} mug"), asset=asset)
    assert embed_images().embedded == 3
    assert set(Embedding.objects.values_list("dim", flat=True)) == {32}
    assert build_index(force=True).status == "published"
    reset_index_cache()
    services.clear_caches()
    try:
        assert get_index().manifest.model == settings.MEEPO_CLIP_MODEL
        page = services.search_products(query="Mug")
        assert page.visual_status == "ok"
        assert len(page.hits) == 3
    finally:
        reset_index_cache()
