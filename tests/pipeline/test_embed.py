"""Stage `embed` on a tiny random CLIP: what it embeds, what it skips, failures, crash recovery."""

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from pipeline import embed as embed_module
from pipeline.embed import MAX_ATTEMPTS, embed_images
from search import encoder as encoder_module
from search.encoder import get_encoder
from search.models import Embedding, EmbeddingFailure
from tests.factories import ImageAssetFactory, ProductFactory, ProductImageFactory

pytestmark = pytest.mark.django_db


def _jpeg(seed):
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    return buf.getvalue()


def make_images(n, **product_kwargs):
    from django.core.files.base import ContentFile

    product = ProductFactory(**product_kwargs)
    images = []
    for i in range(n):
        asset = ImageAssetFactory(thumbnail=None)
        asset.thumbnail.save(f"thumbs/{asset.sha256}.jpg", ContentFile(_jpeg(asset.pk)))
        images.append(ProductImageFactory(product=product, asset=asset, position=i))
    return images


def stored_vector(asset, model):
    row = Embedding.objects.get(asset=asset, model_name=model)
    return np.frombuffer(bytes(row.vector), dtype=np.float32)


def test_embeds_every_missing_image_with_vectors_of_the_encoder(tiny_clip, settings):
    images = make_images(5)
    report = embed_images(batch_size=2)
    assert (report.candidates, report.embedded, report.failed) == (5, 5, 0)
    model = settings.MEEPO_CLIP_MODEL
    thumb = Image.open(images[2].asset.thumbnail.path).convert("RGB")
    expected = get_encoder().encode_images([thumb])[0]
    np.testing.assert_allclose(stored_vector(images[2].asset, model), expected, atol=1e-5)
    assert Embedding.objects.filter(model_name=model, dim=get_encoder().dim).count() == 5


def test_second_run_does_no_model_work(tiny_clip, monkeypatch):
    make_images(3)
    embed_images()

    def boom(*args, **kwargs):
        raise AssertionError("the model must not be loaded when nothing is missing")

    monkeypatch.setattr(encoder_module, "get_encoder", boom)
    report = embed_images()
    assert (report.candidates, report.embedded) == (0, 0)


def test_skips_inactive_products_and_shared_images(tiny_clip):
    make_images(2, is_active=False)
    shared = make_images(1)[0]
    shared.is_shared = True
    shared.save()
    keep = make_images(1)
    report = embed_images()
    assert report.embedded == 1
    assert Embedding.objects.get().asset_id == keep[0].asset_id


def test_changing_the_model_re_embeds_and_nothing_else_does(tiny_clip, settings, tmp_path):
    from demo.random_model import save_random_clip

    make_images(3)
    embed_images()
    assert embed_images().embedded == 0
    settings.MEEPO_CLIP_MODEL = str(save_random_clip(tmp_path / "other", size="tiny", seed=1))
    assert embed_images().embedded == 3
    assert Embedding.objects.count() == 6


def test_bad_image_is_recorded_retried_and_does_not_stop_the_rest(tiny_clip, settings):
    images = make_images(4)
    bad = images[1].asset
    Path(bad.thumbnail.path).write_bytes(b"not a jpeg")
    report = embed_images(batch_size=2)
    assert (report.embedded, report.failed) == (3, 1)
    failure = EmbeddingFailure.objects.get(asset=bad)
    assert "UnsupportedImage" in failure.error
    assert embed_images().failed == 1  # retried on the next run
    assert EmbeddingFailure.objects.get(asset=bad).attempts == 2
    Path(bad.thumbnail.path).write_bytes(_jpeg(99))
    assert embed_images().embedded == 1
    assert not EmbeddingFailure.objects.exists()


def test_gives_up_after_max_attempts_unless_forced(tiny_clip, settings):
    bad = make_images(1)[0].asset
    Path(bad.thumbnail.path).write_bytes(b"junk")
    EmbeddingFailure.objects.create(
        asset=bad, model_name=settings.MEEPO_CLIP_MODEL, error="x", attempts=MAX_ATTEMPTS
    )
    assert embed_images().candidates == 0
    assert embed_images(force=True).failed == 1


def test_crash_mid_run_loses_at_most_one_batch_and_next_run_resumes(tiny_clip, monkeypatch):
    make_images(6)
    real_store = embed_module._store_batch
    calls = []

    def crash_on_second_batch(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        real_store(*args)

    monkeypatch.setattr(embed_module, "_store_batch", crash_on_second_batch)
    with pytest.raises(RuntimeError):
        embed_images(batch_size=2)
    assert Embedding.objects.count() == 2
    monkeypatch.setattr(embed_module, "_store_batch", real_store)
    report = embed_images(batch_size=2)
    assert report.embedded == 4
    assert Embedding.objects.count() == 6


def test_dry_run_writes_nothing_and_limit_caps_work(tiny_clip):
    make_images(4)
    assert embed_images(dry_run=True).candidates == 4
    assert not Embedding.objects.exists()
    assert embed_images(limit=3).embedded == 3


def test_force_rewrites_existing_vectors(tiny_clip):
    make_images(2)
    embed_images()
    before = list(Embedding.objects.values_list("updated_at", flat=True))
    assert embed_images(force=True).embedded == 2
    after = list(Embedding.objects.values_list("updated_at", flat=True))
    assert all(a > b for a, b in zip(after, before, strict=True))


def test_command_prints_summary_and_fails_clearly_without_a_model(tiny_clip, settings, capsys):
    make_images(2)
    call_command("embed")
    assert "2 embedded, 0 failed" in capsys.readouterr().out
    make_images(1)
    settings.MEEPO_CLIP_MODEL = "/nonexistent/model"
    with pytest.raises(CommandError, match="download_model") as exc:
        call_command("embed")
    assert exc.value.returncode == 1
