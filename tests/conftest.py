"""Shared fixtures. Settings come from the environment, so test values are set before Django loads."""

import os

os.environ.setdefault("MEEPO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("MEEPO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("MEEPO_ALLOWED_LOOPBACK", "127.0.0.1:*")
os.environ.setdefault("MEEPO_LOG_LEVEL", "WARNING")

import pytest

pytest_plugins = ["tests.shop_fixtures"]


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    """Every test writes its media, embeddings and indexes into its own temporary directory."""
    data = tmp_path / "var"
    (data / "media").mkdir(parents=True)
    settings.MEEPO_DATA_DIR = data
    settings.MEDIA_ROOT = data / "media"
    return data


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    """A tiny random-weight CLIP saved with save_pretrained, loaded through the real code path."""
    from search.random_model import save_random_clip

    return save_random_clip(tmp_path_factory.mktemp("tiny-clip"), size="tiny")


@pytest.fixture
def tiny_clip(settings, tiny_clip_dir):
    """Point MEEPO_CLIP_MODEL at the tiny model for this test."""
    settings.MEEPO_CLIP_MODEL = str(tiny_clip_dir)
    return tiny_clip_dir
