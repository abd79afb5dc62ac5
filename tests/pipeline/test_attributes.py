"""Zero-shot attributes on planted vectors: the labels are known, so each product must get them,
re-runs must skip unchanged products, and a new image, model or taxonomy must relabel."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import ProductAttributes
from pipeline.attributes import assign_attributes
from search.attributes import (
    DEFAULT_TAXONOMY,
    LabelVectors,
    TaxonomyError,
    classify,
    label_vectors,
    load_taxonomy,
)
from search.models import Embedding
from tests.factories import ProductFactory, ProductImageFactory

pytestmark = pytest.mark.django_db
DIM = 16
AXES = {"navy": 0, "red": 1, "green": 2, "striped": 3, "plain": 4}
TAXONOMY = """
attributes:
  colour:
    min_confidence: 0.6
    top_k: 2
    templates: ["a photo of a {} product", "a {} item"]
    labels: {navy: [navy], red: [red], green: [green]}
  pattern:
    templates: ["a {} pattern"]
    labels: {striped: striped, plain: [plain]}
"""


def unit(*axes):
    v = np.zeros(DIM, dtype=np.float32)
    for a in axes:
        v[AXES[a]] = 1.0
    return v / np.linalg.norm(v)


class FakeEncoder:
    """A text tower that maps a prompt to the axis of the taxonomy word in it."""

    def __init__(self):
        import torch

        self.calls = 0
        self.model = SimpleNamespace(logit_scale=torch.tensor(math.log(100.0)), logit_bias=None)

    def encode_texts(self, texts):
        self.calls += 1
        return np.stack([unit(*[w for w in AXES if w in t.split()]) for t in texts])


@pytest.fixture
def taxonomy(tmp_path):
    path = tmp_path / "taxonomy.yaml"
    path.write_text(TAXONOMY)
    return load_taxonomy(path)


@pytest.fixture
def encoder(taxonomy):
    fake = FakeEncoder()
    label_vectors(taxonomy, encoder=fake)  # computed once, cached in the data directory
    return fake


def plant(product, vector, position=0):
    image = ProductImageFactory(product=product, position=position)
    Embedding.objects.create(
        asset=image.asset, model_name=settings.MEEPO_CLIP_MODEL, dim=DIM, vector=vector.tobytes()
    )
    return image


def test_shipped_taxonomy_is_valid_and_covers_the_four_attributes():
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY)
    assert set(taxonomy.attributes) == {"colour", "pattern", "material", "product_type"}
    assert len(taxonomy.attributes["colour"].labels) == 20
    assert "home-garden" in taxonomy.attributes["product_type"].labels
    assert taxonomy.display("colour", "navy") == "Navy blue"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("attributes: {size: {labels: {s: [small]}}}", "unknown attribute"),
        ("attributes: {colour: {labels: {}}}", "non-empty"),
        ("attributes: {colour: {templates: [nothing], labels: {red: red}}}", "template"),
        ("[1, 2", "cannot read"),
    ],
)
def test_unusable_taxonomy_says_why(tmp_path, text, message):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(TaxonomyError, match=message):
        load_taxonomy(path)


def test_confidences_softmax_for_clip_and_sigmoid_for_siglip():
    vectors = np.eye(2, DIM, dtype=np.float32)
    image = np.eye(1, DIM, dtype=np.float32)  # cosine 1 with label a, 0 with b
    softmax = LabelVectors(("a", "b"), vectors, scale=2.0, bias=None).confidences(image)[0]
    assert softmax[0] == pytest.approx(math.exp(2) / (math.exp(2) + 1))
    sigmoid = LabelVectors(("a", "b"), vectors, scale=10.0, bias=-5.0).confidences(image)[0]
    assert sigmoid[0] == pytest.approx(1 / (1 + math.exp(-5)))
    assert sigmoid[1] == pytest.approx(1 / (1 + math.exp(5)))
    chosen, top = classify(image, LabelVectors(("a", "b"), vectors, 2.0, None), top_k=2,
                           min_confidence=0.9)[0]  # fmt: skip
    assert chosen == ""  # 0.88 is not confident enough
    assert [label for label, _ in top] == ["a", "b"]


def test_products_get_their_planted_attributes_and_reruns_skip_them(taxonomy, encoder):
    navy_striped = ProductFactory(title="Shirt")
    plant(navy_striped, unit("navy", "striped"))
    red_plain = ProductFactory(title="Mug")
    plant(red_plain, unit("red", "plain"))
    plant(red_plain, unit("green", "striped"), position=1)  # not the main image
    unclear = ProductFactory(title="Thing")
    plant(unclear, unit("navy", "red", "plain"))  # half navy, half red: no confident colour
    ProductFactory(title="No image yet")

    report = assign_attributes(taxonomy=taxonomy)
    assert (report.candidates, report.labelled, report.unchanged) == (3, 3, 0)
    got = {a.product_id: a for a in ProductAttributes.objects.all()}
    assert (got[navy_striped.pk].colour, got[navy_striped.pk].pattern) == ("navy", "striped")
    assert (got[red_plain.pk].colour, got[red_plain.pk].pattern) == ("red", "plain")
    assert got[unclear.pk].colour == ""
    assert got[unclear.pk].pattern == "plain"
    top = got[navy_striped.pk].scores["colour"]
    assert top[0][0] == "navy"
    assert top[0][1] > 0.99
    assert len(top) == 2  # top_k
    assert got[navy_striped.pk].material == ""  # not in this taxonomy
    assert encoder.calls == 5  # one batch of prompts per label, once

    again = assign_attributes(taxonomy=taxonomy)
    assert (again.labelled, again.unchanged) == (0, 3)
    assert assign_attributes(taxonomy=taxonomy, force=True).labelled == 3


def test_a_new_main_image_or_taxonomy_relabels(tmp_path, taxonomy, encoder):
    product = ProductFactory(title="Shirt")
    old = plant(product, unit("navy", "striped"))
    assign_attributes(taxonomy=taxonomy)
    old.position = 5
    old.save()
    plant(product, unit("green", "plain"), position=0)
    report = assign_attributes(taxonomy=taxonomy)
    assert report.labelled == 1
    assert ProductAttributes.objects.get(product=product).colour == "green"
    changed = tmp_path / "changed.yaml"
    changed.write_text(TAXONOMY.replace("min_confidence: 0.6", "min_confidence: 0.7"))
    relabel = load_taxonomy(changed)
    label_vectors(relabel, encoder=encoder)
    assert assign_attributes(taxonomy=relabel, dry_run=True).labelled == 1
    assert ProductAttributes.objects.get(product=product).key != ""  # dry run wrote nothing


def test_label_vectors_are_cached_per_model_and_taxonomy(taxonomy, encoder):
    calls = encoder.calls
    first = label_vectors(taxonomy, encoder=encoder)
    assert encoder.calls == calls  # served from the cache file
    assert first["colour"].labels == ("navy", "red", "green")
    np.testing.assert_allclose(first["colour"].vectors[0], unit("navy"), atol=1e-6)
    assert list((settings.MEEPO_DATA_DIR / "attributes").glob("labels-*.npz"))


def test_command_reports_and_refuses_a_bad_taxonomy(tmp_path, taxonomy, encoder, capsys):
    plant(ProductFactory(title="Shirt"), unit("navy", "striped"))
    call_command("attributes", "--taxonomy", taxonomy.source)
    assert "attributes: 1 labelled, 0 unchanged of 1 products" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("attributes: 3")
    with pytest.raises(CommandError) as err:
        call_command("attributes", "--taxonomy", str(bad))
    assert err.value.returncode == 2


def test_taxonomy_setting_wins_then_the_data_dir_then_the_shipped_one(settings, tmp_path):
    from search.attributes import taxonomy_path

    settings.MEEPO_ATTRIBUTE_TAXONOMY = ""
    assert taxonomy_path() == DEFAULT_TAXONOMY
    local = settings.MEEPO_DATA_DIR / "taxonomy.yaml"
    local.write_text(TAXONOMY)
    assert taxonomy_path() == local
    settings.MEEPO_ATTRIBUTE_TAXONOMY = str(tmp_path / "mine.yaml")
    assert taxonomy_path() == tmp_path / "mine.yaml"
