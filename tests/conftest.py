"""Shared fixtures.

Settings come from the environment; the test values are set before Django loads in one place,
the `env` list of [tool.pytest.ini_options] in pyproject.toml (pytest-env).
"""

import os

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
def _plain_static_files(settings):
    """{% static %} without collectstatic: the production manifest storage raises on a file it
    has no manifest entry for, and no test here is about hashed asset names (the deploy tests
    run collectstatic in their own processes)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Every test starts and ends with empty per-process caches: search results, filter id sets,
    examples, spelling, cached pages (search.result_cache) and the loaded index versions. The one
    place tests reset them; a test calls a reset itself only mid-test (after publishing a new
    version, or to compare two runs). A model once loaded stays loaded (loading costs seconds)."""
    from search import result_cache, services
    from search.index import reset_index_cache

    def reset():
        services.clear_caches()
        reset_index_cache()
        result_cache.clear()

    reset()
    yield
    reset()


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
