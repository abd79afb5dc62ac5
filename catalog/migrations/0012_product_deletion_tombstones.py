"""Tombstones of deleted products (catalog.models.deletions), written by the database itself.

A trigger on `catalog_product` writes (id, now) for every deleted row, whatever deleted it: the
admin's delete action, a store's cascade, `queryset.delete()`, raw SQL (as the full-text triggers
of 0002 keep the text index for every write path). Django's `post_delete` would miss raw SQL and
`_raw_delete`, and a receiver makes every queryset delete load its products first.

SQLite: a row trigger, the time as Django writes datetimes there (UTC, microseconds).
PostgreSQL: a statement trigger over the deleted rows' transition table, `clock_timestamp()` (the
time of the delete, not of its transaction's start: a long transaction's tombstone is not dated
before an index version it must correct).
"""

import django.utils.timezone
from django.db import migrations, models

from catalog.migrations._vendor import VendorRunSQL

SQLITE_FORWARD = [
    """CREATE TRIGGER catalog_product_deletion_ad AFTER DELETE ON catalog_product BEGIN
        INSERT INTO catalog_productdeletion(product_id, deleted_at)
        VALUES (old.id, strftime('%Y-%m-%d %H:%M:%f', 'now') || '000');
    END""",
]
SQLITE_BACKWARD = ["DROP TRIGGER IF EXISTS catalog_product_deletion_ad"]

POSTGRES_FORWARD = [
    """CREATE FUNCTION catalog_product_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO catalog_productdeletion(product_id, deleted_at)
        SELECT id, clock_timestamp() FROM deleted_products;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER catalog_product_deletion_ad AFTER DELETE ON catalog_product
        REFERENCING OLD TABLE AS deleted_products
        FOR EACH STATEMENT EXECUTE FUNCTION catalog_product_deletion()""",
]
POSTGRES_BACKWARD = [
    "DROP TRIGGER IF EXISTS catalog_product_deletion_ad ON catalog_product",
    "DROP FUNCTION IF EXISTS catalog_product_deletion()",
]


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0011_product_updated_at_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="ProductDeletion",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("product_id", models.BigIntegerField()),
                ("deleted_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "indexes": [
                    models.Index(fields=["deleted_at", "product_id"], name="product_deletion_since")
                ],
            },
        ),
        VendorRunSQL("sqlite", sql=SQLITE_FORWARD, reverse_sql=SQLITE_BACKWARD),
        VendorRunSQL("postgresql", sql=POSTGRES_FORWARD, reverse_sql=POSTGRES_BACKWARD),
    ]
