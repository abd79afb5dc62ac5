"""search.manifest: the one type every index writer and reader uses, and index_status on versions
published without the builder."""

import json
import os

import numpy as np
import pytest
from django.core.management import call_command

from bench.planted_index import publish_arrays
from search.health import check_health
from search.index import SearchIndex, index_root, published_dir
from search.manifest import FORMAT, MANIFEST_FILE, BuildInfo, CatalogueInfo, Manifest, read_manifest

pytestmark = pytest.mark.django_db


def units(rows, dim=8, seed=0):
    x = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_round_trip_keeps_every_field_and_unknown_keys():
    manifest = Manifest(
        model="m",
        dim=8,
        count=3,
        index_type="flat",
        params={"nprobe": 4},
        version="v1",
        build=BuildInfo(mode="full", added=3, seconds=1.5, phases_s={"vectors": 0.1}),
        catalogue=CatalogueInfo(images=3, digest="abc", max_embedding_updated_at=None),
        relevance={"noise_best": [0.1, 0.2], "percentiles": {"95": 0.2}},
        vocabulary_words=7,
        extra={"from_a_newer_builder": [1, 2]},
    )
    again = Manifest.from_json(manifest.to_json())
    assert again == manifest
    data = json.loads(manifest.to_json())
    assert data["from_a_newer_builder"] == [1, 2]  # unknown keys survive, at the top level
    assert "extra" not in data
    assert "keys_read" not in data
    assert data["format"] == FORMAT


def test_reading_a_sparse_manifest_gives_defaults_not_key_errors():
    sparse = Manifest.from_json(json.dumps({"model": "m", "dim": 8, "count": 2}))
    assert (sparse.build.mode, sparse.catalogue.digest, sparse.target_recall) == ("", "", None)
    assert sparse.params == {}
    assert sparse.latency_ms == {}
    assert sparse.relevance is None
    assert "relevance" not in sparse.keys_read
    with pytest.raises(ValueError, match="JSON object"):
        Manifest.from_json("[1, 2]")


def test_a_version_published_from_arrays_reads_like_a_built_one(settings):
    path, _, _ = publish_arrays(np.arange(1, 11), units(10), model="m", memory_mb=64)
    manifest = read_manifest(path)
    assert (manifest.model, manifest.dim, manifest.count) == ("m", 8, 10)
    assert manifest.target_recall == settings.MEEPO_INDEX_RECALL
    assert manifest.memory_budget_mb == 64
    assert manifest.catalogue.images == 10
    assert SearchIndex.load(path).manifest == manifest


def test_index_status_reads_a_version_published_from_arrays(settings, capsys):
    settings.MEEPO_CLIP_MODEL = "m"
    publish_arrays(np.arange(1, 11), units(10), model="m")
    call_command("index_status")  # raised KeyError('build') before the manifest had one type
    out = capsys.readouterr().out
    assert "vectors:   10" in out
    assert f"(target {settings.MEEPO_INDEX_RECALL})" in out


def test_index_status_reads_a_version_without_build_or_target(settings, capsys):
    """What `publish_arrays` used to write: no build record, no target recall, no created_at."""
    settings.MEEPO_CLIP_MODEL = "m"
    path, _, _ = publish_arrays(np.arange(1, 11), units(10), model="m")
    data = json.loads((path / MANIFEST_FILE).read_text())
    for key in ("build", "target_recall", "created_at", "memory_budget_mb"):
        del data[key]
    (path / MANIFEST_FILE).write_text(json.dumps(data))
    call_command("index_status")
    out = capsys.readouterr().out
    assert "built:     unknown" in out
    assert "(target None)" in out


def test_health_reads_the_manifest_through_the_type(settings):
    settings.MEEPO_CLIP_MODEL = "m"
    path, _, _ = publish_arrays(np.arange(1, 6), units(5), model="m")
    info = check_health().index.info
    assert (info["version"], info["model"], info["vectors"]) == (path.name, "m", 5)
    (path / MANIFEST_FILE).write_text("{not json")
    assert "no readable manifest" in check_health().index.detail
    os.unlink(index_root() / "current")
    assert published_dir() is None
