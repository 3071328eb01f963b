"""Rollups folded from the ledger in batches instead of an upsert per run.

Rows already in the ledger are already in the rollups: their ``txid`` stays NULL
(the column is added without a default, so no table rewrite; the ledger sets it on
insert, so rows that workers of the previous release write during the upgrade, which
upsert their rollups themselves, stay NULL too) and the watermark
starts at this migration's transaction, so only rows written after it are
folded. Adding the column on PostgreSQL waits for the ledger's open writers; new
writers wait for this short transaction.
"""

from django.db import migrations, models


TABLE = "usage_usagerecord"


def add_txid_column(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} ADD COLUMN txid bigint NULL")
    else:
        schema_editor.execute(f'ALTER TABLE "{TABLE}" ADD COLUMN "txid" bigint NULL')


def drop_txid_column(apps, schema_editor):
    schema_editor.execute(f'ALTER TABLE "{TABLE}" DROP COLUMN "txid"')


def start_watermark(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        else:
            cursor.execute(f'SELECT COALESCE(MAX("id"), 0) + 1 FROM "{TABLE}"')
        (position,) = cursor.fetchone()
    apps.get_model("usage", "FoldWatermark").objects.create(pk=1, position=position)


class Migration(migrations.Migration):
    dependencies = [("usage", "0003_record_filter_indexes")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(add_txid_column, drop_txid_column)],
            state_operations=[
                migrations.AddField(
                    model_name="usagerecord",
                    name="txid",
                    field=models.BigIntegerField(
                        editable=False,
                        help_text="The writing transaction (PostgreSQL): what folding into "
                        "rollups orders by. Empty on rows folded before folding existed, "
                        "and on SQLite.",
                        null=True,
                    ),
                )
            ],
        ),
        migrations.CreateModel(
            name="FoldWatermark",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("position", models.BigIntegerField(default=0)),
                ("folds", models.BigIntegerField(default=0)),
                ("folded_at", models.DateTimeField(blank=True, null=True)),
            ],
        ),
        migrations.RunPython(start_watermark, migrations.RunPython.noop),
    ]
