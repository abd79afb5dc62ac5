"""The models and the migrations agree: splitting catalog/models into a package (or any other
refactor of the model modules) must not need a new migration."""

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models_need_no_new_migration():
    out = StringIO()
    # --check exits non-zero (SystemExit) when a model change has no migration yet.
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    assert "No changes detected" in out.getvalue()


def test_models_package_reexports_every_model():
    from django.apps import apps

    import catalog.models

    for model in apps.get_app_config("catalog").get_models():
        assert getattr(catalog.models, model.__name__) is model
