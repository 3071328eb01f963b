"""Indexes for the records list's filters, built without locking the ledger.

On PostgreSQL they are created CONCURRENTLY (writes to a large ledger go on while
they build); the embedded SQLite default has no such thing and builds them plainly.
"""

from django.db import migrations, models

from apps.core.migration_ops import AddIndexWithoutLocking


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
