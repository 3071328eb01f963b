""" "Replay from time T": read the team's events back from the topic, starting at
the offsets Kafka gives for that time (without Kafka, from the event log).

The offsets come from the records' timestamps, which say when the relay sent them;
"since T" means events that happened since T (their ``time``, what the page shows).
A row that waited in the outbox (Kafka down, no relay) reaches the topic after T
though it happened before, so events are filtered by their own time as well.
"""

import uuid
from datetime import datetime

from django.conf import settings
from django.utils.dateparse import parse_datetime
from kafka import TopicPartition

from apps.events import envelope, kafka, selectors


def replay(team, since: datetime, *, limit: int = 200) -> list[dict]:
    if not settings.KAFKA_BOOTSTRAP_SERVERS:
        rows = selectors.events_for_team(team, since=since).order_by("sequence")[:limit]
        return [envelope.build(row) for row in rows]
    topic = settings.KAFKA_EVENTS_TOPIC
    consumer = kafka.consumer(
        topic, group_id=None, client_id=f"replay-{uuid.uuid4().hex[:8]}", consumer_timeout_ms=1500
    )
    consumer.unsubscribe()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        at_ms = int(since.timestamp() * 1000)
        offsets = consumer.offsets_for_times(dict.fromkeys(partitions, at_ms))
        ends = consumer.end_offsets(partitions)
        for tp in partitions:
            found = offsets.get(tp)
            # Nothing at or after that time: Kafka answers None, Tansu offset 0 with
            # timestamp -1 (which would read the partition from its start).
            nothing = found is None or found.timestamp < 0
            consumer.seek(tp, ends[tp] if nothing else found.offset)
        key = str(team.pk).encode()
        events = []
        for record in consumer:
            if record.key != key:
                continue
            try:
                event = envelope.parse(record.value, key=record.key)
            except envelope.InvalidEvent:
                continue
            if parse_datetime(event["time"]) < since:
                continue
            events.append(event)
            if len(events) >= limit:
                break
        return sorted(events, key=lambda e: int(e["sequence"]))
    finally:
        consumer.close(autocommit=False)
