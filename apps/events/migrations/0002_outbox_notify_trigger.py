"""Wake the relay from the database: a statement-level trigger on the outbox sends
NOTIFY on every insert, so ``emit`` needs no extra round trip per event and bulk
inserts (or rows written by hand) wake the relay too. PostgreSQL delivers it only
when the transaction commits, and folds identical notifications of one transaction
into one. Other databases (the embedded SQLite default) have no relay to wake.
"""

from django.db import migrations

from apps.core.migration_ops import postgresql_only

CHANNEL = "portal_events_outbox"  # apps.events.outbox.NOTIFY_CHANNEL, frozen here

CREATE = f"""
CREATE OR REPLACE FUNCTION events_outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER events_outbox_notify
    AFTER INSERT ON events_outboxevent
    FOR EACH STATEMENT EXECUTE FUNCTION events_outbox_notify();
"""
DROP = """
DROP TRIGGER IF EXISTS events_outbox_notify ON events_outboxevent;
DROP FUNCTION IF EXISTS events_outbox_notify();
"""


class Migration(migrations.Migration):
    dependencies = [("events", "0001_initial")]

    operations = [postgresql_only(CREATE, DROP)]
