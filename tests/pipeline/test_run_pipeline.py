"""`manage.py pipeline` and friends on planted images with the tiny CLIP (no crawling here;
tests/pipeline/test_pipeline_shop.py runs the whole chain against the demo shop)."""

import io

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from pipeline import run as run_module
from pipeline.run import run_pipeline
from search.index import get_index, published_dir
from search.models import Embedding
from tests.factories import ImageAssetFactory, ProductFactory, ProductImageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _reload(settings):
    settings.MEEPO_INDEX_RELOAD_SECONDS = 0


def make_images(n, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (30, 30, 3), dtype=np.uint8)).save(buf, "JPEG")
        asset = ImageAssetFactory(thumbnail=None)
        asset.thumbnail.save(f"thumbs/{asset.sha256}.jpg", ContentFile(buf.getvalue()))
        ProductImageFactory(product=ProductFactory(), asset=asset)


def test_pipeline_embeds_and_publishes_then_second_run_changes_nothing(tiny_clip):
    make_images(4)
    first = run_pipeline(scrape=False)
    assert first.ok
    assert (first.embed.embedded, first.index.status) == (4, "published")
    assert get_index().ntotal == 4
    second = run_pipeline(scrape=False)
    assert (second.embed.candidates, second.index.status) == (0, "nothing to do")
    # Attributes come from the stored vectors after embed, once; the second run skips them.
    assert (first.attributes.labelled, second.attributes.labelled) == (4, 0)
    assert "attributes: 0 labelled, 4 unchanged" in second.summary()
    assert published_dir().name == first.index.version


def test_failed_stage_is_reported_and_later_stages_still_run(tiny_clip, monkeypatch, capsys):
    def broken_scrape(**kwargs):
        raise RuntimeError("store unreachable")

    monkeypatch.setattr(run_module, "scrape_stores", broken_scrape)
    make_images(2)
    with pytest.raises(CommandError, match="scrape"):
        call_command("pipeline")
    out = capsys.readouterr().out
    assert "scrape: FAILED: RuntimeError: store unreachable" in out
    assert Embedding.objects.count() == 2
    assert get_index().ntotal == 2


def test_dry_run_writes_nothing(tiny_clip, monkeypatch):
    make_images(2)
    report = run_pipeline(scrape=False, dry_run=True)
    assert (report.embed.candidates, report.index.status) == (2, "empty")
    assert not Embedding.objects.exists()
    assert published_dir() is None


def test_index_status_reports_published_index_and_staleness(tiny_clip, monkeypatch, capsys):
    with pytest.raises(CommandError, match="no index published"):
        call_command("index_status")
    make_images(3)
    run_pipeline(scrape=False)
    call_command("index_status")
    out = capsys.readouterr().out
    assert "vectors:   3" in out
    assert "index is up to date" in out
    make_images(1, seed=1)
    run_module.run_pipeline(scrape=False, dry_run=True)
    from pipeline.embed import embed_images

    embed_images()
    call_command("index_status")
    assert "CHANGED since this index" in capsys.readouterr().out


def test_create_random_model_saves_a_loadable_model_and_warns(tmp_path, settings, capsys):
    call_command("create_random_model", str(tmp_path / "m"), "--size", "tiny")
    assert "RANDOM" in capsys.readouterr().out
    settings.MEEPO_CLIP_MODEL = str(tmp_path / "m")
    from search.encoder import get_encoder

    assert get_encoder().encode_texts(["shoe"]).shape == (1, get_encoder().dim)


def test_download_model_refuses_a_local_directory(tiny_clip, tmp_path):
    with pytest.raises(CommandError, match="already a local directory"):
        call_command("download_model", "--to", str(tmp_path / "x"), "--model", str(tiny_clip))
