"""Fixtures for the deployment tests: a prepared data directory and the nginx + gunicorn stack."""

import pytest

from tests.deploy.stack import Stack, app_env, manage


@pytest.fixture(scope="module")
def stack_data(tmp_path_factory, tiny_clip_dir):
    """A migrated data directory with collected static files, used by a server pair."""
    data = tmp_path_factory.mktemp("stack-data")
    # The tiny random CLIP's scores mean nothing, and these tests want full pages of look-alikes
    # through the stack: no relevance floor here (tests/search/test_result_counts.py tests it).
    env = app_env(data, MEEPO_CLIP_MODEL=str(tiny_clip_dir), MEEPO_RELEVANCE_FLOOR="false")
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    return data, env


@pytest.fixture(scope="module")
def stack(stack_data):
    """nginx + gunicorn over a small synthetic catalogue with a published index."""
    data, env = stack_data
    add = "from tests.deploy.catalogue import add_products; add_products(200)"
    manage(env, "shell", "-c", add)
    manage(env, "build_index")
    running = Stack(data_dir=data, env=env).start()
    yield running
    running.stop()
