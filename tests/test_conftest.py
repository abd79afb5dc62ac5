"""The shared fixtures in tests/conftest.py: every test starts with empty process caches and plain
static files, and the test environment comes from pytest-env alone."""

import os

from django.conf import settings as django_settings
from django.core.cache import caches

from search import index


def page_cache():
    return caches[django_settings.MEEPO_SEARCH_PAGE_CACHE_ALIAS]


def test_a_test_may_leave_caches_full():
    page_cache().set("left-by-an-earlier-test", 1)
    index._holders["left-by-an-earlier-test"] = object()


def test_the_next_test_starts_with_them_empty():
    # Runs after the test above (file order): the autouse fixture emptied what it left.
    assert page_cache().get("left-by-an-earlier-test") is None
    assert "left-by-an-earlier-test" not in index._holders


def test_static_files_need_no_collectstatic():
    from django.templatetags.static import static

    assert static("no-such-file-in-any-manifest.css").endswith("no-such-file-in-any-manifest.css")


def test_environment_set_before_django_loaded():
    # pyproject.toml's pytest-env list (D: keeps a value the caller exported).
    assert os.environ["MEEPO_SECRET_KEY"]
    assert os.environ["MEEPO_SECRET_KEY"] == django_settings.SECRET_KEY
    assert "testserver" in django_settings.ALLOWED_HOSTS
