"""Indexes for the records list's filters, built without locking the ledger.

On PostgreSQL they are created CONCURRENTLY (writes to a large ledger go on while
they build); the embedded SQLite default has no such thing and builds them plainly.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexWithoutLocking(AddIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(
            self, app_label, schema_editor, from_state, to_state
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(
            self, app_label, schema_editor, from_state, to_state
        )


def _index(dimension: str, name: str):
    return AddIndexWithoutLocking(
        model_name="usagerecord",
        index=models.Index(fields=["team", dimension, "-occurred_at", "-id"], name=name),
    )


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY can't run in a transaction

    dependencies = [("usage", "0002_seed_openai_prices")]

    operations = [
        _index("assistant", "usage_record_assistant"),
        _index("api_key", "usage_record_key"),
        _index("prompt_version", "usage_record_prompt"),
        _index("model", "usage_record_model"),
    ]
