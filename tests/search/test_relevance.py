"""The relevance floor (search.relevance) and its calibration at index build time, on planted
vectors: the floor drops planted noise and keeps planted matches at several catalogue sizes."""

import numpy as np
import pytest

from bench.planted_index import publish_arrays
from search.index import SearchIndex
from search.relevance import (
    NOISE_QUERIES,
    FloorParams,
    NoiseProfile,
    floor_for,
    floor_mask,
    random_text_queries,
)

DIM = 128


def units(rows):
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def near(q, cosine, rng):
    """A unit vector at exactly `cosine` from unit vector q."""
    other = rng.normal(size=q.shape).astype(np.float32)
    other -= other.dot(q) * q
    other /= np.linalg.norm(other)
    return cosine * q + np.sqrt(1 - cosine**2) * other


def test_noise_percentile_and_margin_both_apply():
    noise = NoiseProfile(tuple(np.linspace(0.1, 0.3, 101)))  # p95 = 0.29
    params = FloorParams(percentile=95, margin=0.05)
    scores = [0.40, 0.36, 0.34, 0.30, 0.28]
    assert floor_mask(scores, noise=noise, params=params).tolist() == [
        True,
        True,
        False,  # beats the noise but is 0.06 below the best
        False,
        False,
    ]
    # A query whose best hit is noise keeps nothing, however close its hits are to each other.
    assert not floor_mask([0.29, 0.28, 0.27], noise=noise, params=params).any()
    assert floor_for(0.40, noise, params) == pytest.approx(0.35)
    assert floor_for(0.30, noise, params) == pytest.approx(0.29)


def test_disabled_floor_or_no_calibration_keeps_what_the_margin_allows():
    scores = [0.5, 0.45, 0.2]
    assert floor_mask(scores, noise=None, params=FloorParams(enabled=False)).all()
    assert floor_mask(scores, noise=None, params=FloorParams(margin=0.1)).tolist() == [
        True,
        True,
        False,
    ]
    assert floor_mask(scores, noise=None, params=FloorParams(margin=0)).all()


def test_noise_profile_round_trips_through_the_manifest():
    profile = NoiseProfile((0.2, 0.1, 0.3))
    section = profile.to_manifest()
    assert section["queries"] == 3
    assert section["percentiles"]["50"] == pytest.approx(0.2)
    again = NoiseProfile.from_manifest({"relevance": section})
    assert again.best == (0.1, 0.2, 0.3)
    assert NoiseProfile.from_manifest({"relevance": None}) is None
    assert NoiseProfile.from_manifest({}) is None


def test_random_text_queries_are_seeded_and_meaningless():
    vocabulary = ["teapot", "chair", "lamp", "x1"]
    first = random_text_queries(40, vocabulary=vocabulary)
    assert first == random_text_queries(40, vocabulary=vocabulary)
    assert len(set(first)) > 30
    assert all(1 <= len(q.split()) <= 3 for q in first)
    assert "x1" not in " ".join(first).split()
    assert random_text_queries(40, seed=1) != random_text_queries(40, seed=2)


@pytest.mark.parametrize("size", [60, 2_000, 20_000])
def test_floor_keeps_planted_matches_and_drops_planted_noise(size, settings):
    """A catalogue of random vectors (noise) with a few planted matches for one query.

    20,000 vectors with exact_max 5,000 make an IVF index: the calibration searches the ANN.
    """
    rng = np.random.default_rng(size)
    vectors = units(rng.normal(size=(size, DIM)))
    query = units(rng.normal(size=DIM))
    matches = np.arange(5)
    for row, cosine in zip(matches, (0.75, 0.73, 0.72, 0.70, 0.69), strict=True):
        vectors[row] = near(query, cosine, rng)
    ids = np.arange(1, size + 1, dtype=np.int64)
    random_queries = units(rng.normal(size=(128, DIM)))
    path, _, _ = publish_arrays(
        ids, vectors, model="m", exact_max=5_000, noise_queries=random_queries
    )
    index = SearchIndex.load(path)
    assert index.noise is not None
    assert len(index.noise.best) == 128
    params = FloorParams()  # the shipped defaults: 95th percentile, margin 0.08

    scores, found = index.search(query, 50)
    kept = set(found[floor_mask(scores, noise=index.noise, params=params)].tolist())
    assert kept == set(ids[matches].tolist())

    # Queries with nothing planted: their best hits are noise and (nearly) all are dropped.
    dropped = 0
    for q in units(rng.normal(size=(20, DIM))):
        scores, _ = index.search(q, 50)
        dropped += int(not floor_mask(scores, noise=index.noise, params=params).any())
    assert dropped >= 17  # a 95th percentile lets about 1 in 20 noise queries through


def test_publish_without_noise_queries_has_no_calibration(settings):
    rng = np.random.default_rng(0)
    path, _, _ = publish_arrays(np.arange(10), units(rng.normal(size=(10, 8))), model="m")
    assert SearchIndex.load(path).noise is None


def test_noise_profile_keeps_pseudo_and_word_queries_apart():
    from search.relevance import measure_noise, query_kinds

    kinds = query_kinds(4, vocabulary=["teapot"])
    assert kinds == ["pseudo", "words", "pseudo", "words"]
    profile = measure_noise(lambda q: np.array([0.1, 0.5, 0.2, 0.6]), np.ones((4, 3)), kinds)
    assert profile.pseudo == (0.1, 0.2)
    assert profile.words == (0.5, 0.6)
    assert profile.threshold(100, "pseudo") == pytest.approx(0.2)
    assert profile.threshold(100, "words") == pytest.approx(0.6)
    assert profile.threshold(100) == pytest.approx(0.6)
    again = NoiseProfile.from_manifest({"relevance": profile.to_manifest()})
    assert again == profile
    params = FloorParams(percentile=100, margin=0, noise="pseudo")
    assert floor_mask([0.3], noise=profile, params=params).tolist() == [True]
    assert floor_mask(
        [0.3], noise=profile, params=FloorParams(percentile=100, margin=0)
    ).tolist() == [False]


def test_random_query_vectors_are_kept_per_model_and_encoder_settings(tiny_clip, settings, tmp_path, monkeypatch):  # fmt: skip
    """The builder loads the encoder only for the first calibration of a model (its weights,
    int8 copy and ONNX session took it past its memory limit at 1 M products); a change of the
    model's files or of the encoder settings encodes afresh."""
    from pipeline.indexing import calibration
    from search import encoder as encoder_module

    settings.MEEPO_DATA_DIR = tmp_path
    first, kinds = calibration._random_query_vectors()
    assert first.shape[0] == len(kinds) == NOISE_QUERIES

    def no_encoder():
        raise AssertionError("the encoder was loaded again")

    monkeypatch.setattr(encoder_module, "get_encoder", no_encoder)
    again, again_kinds = calibration._random_query_vectors()
    np.testing.assert_array_equal(again, first)
    assert again_kinds == kinds

    settings.MEEPO_CLIP_QUANTIZE = "off" if settings.MEEPO_CLIP_QUANTIZE != "off" else "on"
    with pytest.raises(AssertionError, match="loaded again"):
        calibration._random_query_vectors()
