"""Migration operations that run on one database backend only (the loader skips `_` modules).

Full-text search differs per backend (SQLite: an FTS5 table kept by triggers; PostgreSQL: a
generated tsvector column with a GIN index), so its SQL runs only where it applies.
"""

from django.db import migrations


class VendorRunSQL(migrations.RunSQL):
    """RunSQL applied only when the database's `connection.vendor` is `vendor`."""

    def __init__(self, vendor: str, sql, reverse_sql=None, **kwargs):
        self.vendor = vendor
        super().__init__(sql, reverse_sql, **kwargs)

    def deconstruct(self):
        name, args, kwargs = super().deconstruct()
        return name, [self.vendor, *args], kwargs

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == self.vendor:
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == self.vendor:
            super().database_backwards(app_label, schema_editor, from_state, to_state)

    def describe(self):
        return f"Raw SQL for {self.vendor}"
