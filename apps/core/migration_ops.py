"""Migration operations shared by apps, for what only PostgreSQL has.

The embedded default runs on SQLite, which has no PL/pgSQL triggers, storage
parameters or concurrent index builds; there these operations do nothing, or
the plain equivalent.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations


def postgresql_only(forward_sql: str, backward_sql: str) -> migrations.RunPython:
    """Run ``forward_sql`` (and ``backward_sql`` when unapplied) on PostgreSQL only."""

    def runner(sql: str):
        def run(apps, schema_editor):
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.execute(sql)

        return run

    return migrations.RunPython(runner(forward_sql), runner(backward_sql))


class AddIndexWithoutLocking(AddIndexConcurrently):
    """``CREATE INDEX CONCURRENTLY`` on PostgreSQL (writes go on while it builds; the
    migration must say ``atomic = False``), a plain ``AddIndex`` elsewhere."""

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
