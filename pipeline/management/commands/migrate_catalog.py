"""Copy the catalogue from this installation's database into PostgreSQL, with counts checked.

    manage.py migrate_catalog --to postgres://meepo:secret@db.internal:5432/meepo

A growing operator moves from SQLite to PostgreSQL without re-crawling: stores, crawl history,
products, their attributes, variants, images, image assets, embeddings (and failures), hosts
(politeness state) and fetch states are copied with their ids, so media paths, the published
index (keyed by image id) and admin links stay valid. The target is migrated first and must
hold no catalogue yet; everything is written in one transaction, so a failure leaves it empty.
Each table's row count is compared afterwards, then the id sequences are moved past the copied
ids. Stop the pipeline (cron/timer) while it runs; web workers may keep serving from SQLite.
Then set MEEPO_DATABASE_URL to the same URL on every machine.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import environ
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.core.serializers import sort_dependencies
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.utils import load_backend

APPS = ("catalog", "search")
TARGET = "migrate_catalog_target"
BATCH = 2_000


def catalogue_models() -> list[type[models.Model]]:
    """The catalogue's concrete models, each after the models it points at."""
    app_list = [(apps.get_app_config(label), None) for label in APPS]
    ordered = sort_dependencies(app_list, allow_cycles=True)
    return [m for m in ordered if not m._meta.proxy and m._meta.managed]


@contextmanager
def target_database(url: str):
    """A connection to `url` under its own alias (this thread only), closed afterwards.

    It is not added to settings.DATABASES: nothing else in the process can route to it.
    """
    config = environ.Env.db_url_config(url)
    if config.get("ENGINE") != "django.db.backends.postgresql":
        raise CommandError("--to must be a postgres:// URL")
    config = connections.configure_settings({DEFAULT_DB_ALIAS: config})[DEFAULT_DB_ALIAS]
    connections[TARGET] = load_backend(config["ENGINE"]).DatabaseWrapper(config, TARGET)
    try:
        yield TARGET
    finally:
        connections[TARGET].close()
        del connections[TARGET]


@contextmanager
def keep_timestamps(model_list):
    """Turn off auto_now/auto_now_add while copying: rows keep their own created/updated times
    (the index digest and crawl history depend on them)."""
    saved = []
    for model in model_list:
        for field in model._meta.concrete_fields:
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                saved.append((field, field.auto_now, field.auto_now_add))
                field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, auto_now, auto_now_add in saved:
            field.auto_now, field.auto_now_add = auto_now, auto_now_add


def copy_model(model, source: str, target: str) -> int:
    """Copy every row of `model` from `source` to `target` in id order, in batches."""
    copied, last = 0, None
    fields = [f.attname for f in model._meta.concrete_fields]
    while True:
        qs = model._base_manager.using(source).order_by("pk").values(*fields)
        if last is not None:
            qs = qs.filter(pk__gt=last)
        rows = list(qs[:BATCH])
        if not rows:
            return copied
        model._base_manager.using(target).bulk_create([model(**row) for row in rows])
        copied += len(rows)
        last = rows[-1][model._meta.pk.attname]


class Command(BaseCommand):
    help = "Copy the catalogue (SQLite) into a PostgreSQL database, with row counts checked."

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, help="postgres://user:password@host:port/db")
        parser.add_argument(
            "--from", dest="source", default=DEFAULT_DB_ALIAS, help="source database alias"
        )

    def handle(self, *args, to: str, source: str, **options):
        started = time.monotonic()
        model_list = catalogue_models()
        with target_database(to) as target:
            call_command("migrate", database=target, interactive=False, verbosity=0)
            busy = [m.__name__ for m in model_list if m._base_manager.using(target).exists()]
            if busy:
                raise CommandError(f"the target already holds a catalogue ({', '.join(busy)})")
            counts = {}
            with transaction.atomic(using=target), keep_timestamps(model_list):
                for model in model_list:
                    copied = copy_model(model, source, target)
                    expected = model._base_manager.using(source).count()
                    found = model._base_manager.using(target).count()
                    if not copied == expected == found:
                        raise CommandError(
                            f"{model._meta.label}: {expected} rows in the source, {copied} "
                            f"copied, {found} in the target; nothing was kept"
                        )
                    counts[model._meta.label] = found
                    self.stdout.write(f"{model._meta.label}: {found}")
                sql = connections[target].ops.sequence_reset_sql(no_style(), model_list)
                with connections[target].cursor() as cursor:
                    for statement in sql:
                        cursor.execute(statement)
        total = sum(counts.values())
        self.stdout.write(
            self.style.SUCCESS(
                f"copied {total} rows in {len(counts)} tables in "
                f"{time.monotonic() - started:.1f} s; counts match"
            )
        )
