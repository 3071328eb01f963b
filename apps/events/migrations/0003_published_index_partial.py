"""Keep the relay's query for unpublished rows cheap under churn.

The relay stamps ``published_at`` on every row it publishes, which leaves a dead
row version behind each time. The full index on ``published_at`` held all of
them under NULL, and the planner chose a bitmap scan over it for ``published_at
IS NULL``: 20 ms per batch after half a million events (bench/events.py). Made
partial (published rows only, which is all retention needs), the relay's scan
uses ``events_outbox_unpublished`` in order with its LIMIT. Autovacuum is told to
visit this queue-like table far sooner than the default 20% of its rows.
"""

from django.db import migrations, models

from apps.core.migration_ops import postgresql_only

VACUUM_SOON = """
ALTER TABLE events_outboxevent SET (
    autovacuum_vacuum_scale_factor = 0.0,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_analyze_scale_factor = 0.02
)
"""
VACUUM_DEFAULT = """
ALTER TABLE events_outboxevent RESET (
    autovacuum_vacuum_scale_factor,
    autovacuum_vacuum_threshold,
    autovacuum_analyze_scale_factor
)
"""


class Migration(migrations.Migration):
    dependencies = [("events", "0002_outbox_notify_trigger")]

    operations = [
        migrations.RemoveIndex(model_name="outboxevent", name="events_published_at"),
        migrations.AddIndex(
            model_name="outboxevent",
            index=models.Index(
                condition=models.Q(("published_at__isnull", False)),
                fields=["published_at"],
                name="events_published",
            ),
        ),
        postgresql_only(VACUUM_SOON, VACUUM_DEFAULT),
    ]
