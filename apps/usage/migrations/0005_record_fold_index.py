"""The index the folder and the readers' unfolded tail use, built without locking
the ledger (CONCURRENTLY on PostgreSQL; only rows written from now on are in it)."""

from django.db import migrations, models

from apps.core.migration_ops import AddIndexWithoutLocking


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY can't run in a transaction

    dependencies = [("usage", "0004_fold_watermark")]

    operations = [
        AddIndexWithoutLocking(
            model_name="usagerecord",
            index=models.Index(
                condition=models.Q(("txid__isnull", False)),
                fields=["txid"],
                name="usage_record_fold",
            ),
        ),
    ]
