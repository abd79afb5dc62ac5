"""Model fields that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from django.db import models


class OrderedJSONField(models.JSONField):
    """A JSONField whose objects keep their keys' order on PostgreSQL too.

    PostgreSQL's jsonb (Django's JSONField there) sorts object keys, so a variant's options
    {"Colour": "Red", "Size": "M"} came back as {"Size": "M", "Colour": "Red"} and its label read
    "M / Red". The plain `json` type keeps the text as written; SQLite keeps it anyway. Key and
    containment lookups (jsonb only) are not used on these fields.
    """

    def db_type(self, connection):
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def get_db_prep_value(self, value, connection, prepared=False):
        if connection.vendor == "postgresql" and not hasattr(value, "as_sql"):
            # Sent as text: a jsonb parameter would be reordered before it reached the column.
            return None if value is None else json.dumps(value, cls=self.encoder)
        return super().get_db_prep_value(value, connection, prepared)

    def from_db_value(self, value, expression, connection):
        if value is not None and not isinstance(value, str):
            return value  # psycopg decodes `json` columns itself
        return super().from_db_value(value, expression, connection)
