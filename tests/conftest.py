"""Shared fixtures. Settings come from the environment, so test values are set before Django loads."""

import os

os.environ.setdefault("MEEPO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("MEEPO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("MEEPO_ALLOWED_LOOPBACK", "127.0.0.1:*")
os.environ.setdefault("MEEPO_LOG_LEVEL", "WARNING")

import pytest

pytest_plugins = ["tests.shop_fixtures"]


def database_vendor() -> str:
    """ "postgresql" when the suite runs on PostgreSQL (tests.postgres.run), else "sqlite"."""
    url = os.environ.get("MEEPO_DATABASE_URL", "")
    return (
        "postgresql" if url.startswith(("postgres://", "postgresql://", "pgsql://")) else "sqlite"
    )


def pytest_collection_modifyitems(config, items):
    """@pytest.mark.only_on("sqlite") tests a property of that backend alone (WAL, FTS5
    triggers; a generated tsvector column): it runs in that backend's suite only."""
    vendor = database_vendor()
    for item in items:
        for marker in item.iter_markers("only_on"):
            if marker.args[0] != vendor:
                item.add_marker(pytest.mark.skip(reason=f"a {marker.args[0]} property"))


@pytest.fixture(autouse=True)
def _data_dir(settings, tmp_path):
    """Every test writes its media, embeddings and indexes into its own temporary directory."""
    data = tmp_path / "var"
    (data / "media").mkdir(parents=True)
    settings.MEEPO_DATA_DIR = data
    settings.MEDIA_ROOT = data / "media"
    return data


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Every test starts and ends with empty per-process caches: search results, filter id sets,
    examples, spelling, and the loaded index versions (a model once loaded stays loaded)."""
    from search import services
    from search.index import reset_index_cache

    services.clear_caches()
    reset_index_cache()
    yield
    services.clear_caches()
    reset_index_cache()


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    """A tiny random-weight CLIP saved with save_pretrained, loaded through the real code path."""
    from demo.random_model import save_random_clip

    return save_random_clip(tmp_path_factory.mktemp("tiny-clip"), size="tiny")


@pytest.fixture
def tiny_clip(settings, tiny_clip_dir):
    """Point MEEPO_CLIP_MODEL at the tiny model for this test."""
    settings.MEEPO_CLIP_MODEL = str(tiny_clip_dir)
    return tiny_clip_dir
