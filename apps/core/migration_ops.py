"""Migration operations shared by apps: SQL that only PostgreSQL understands.

The embedded default runs on SQLite, which has no triggers in PL/pgSQL and no
storage parameters; these operations do nothing there.
"""

from django.db import migrations


def postgresql_only(forward_sql: str, backward_sql: str) -> migrations.RunPython:
    """Run ``forward_sql`` (and ``backward_sql`` when unapplied) on PostgreSQL only."""

    def runner(sql: str):
        def run(apps, schema_editor):
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.execute(sql)

        return run

    return migrations.RunPython(runner(forward_sql), runner(backward_sql))
