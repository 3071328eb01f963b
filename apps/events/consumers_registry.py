"""Every Kafka consumer of the portal, declared once: {name: topic, handler, dead-letter topic}.

``manage.py bridge_events`` runs ``events-bridge``; a new consumer is a new
entry here and a handler, run by :func:`apps.events.bridge.run_consumer`.
Settings are read when the consumer starts, so tests can override them.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class ConsumerSpec:
    topic: Callable[[], str]
    handler: str  # dotted path: handler(records) -> list of (record, reason) to dead-letter
    dlq: Callable[[], str]
    group: Callable[[], str]


CONSUMERS: dict[str, ConsumerSpec] = {
    "events-bridge": ConsumerSpec(
        topic=lambda: settings.KAFKA_EVENTS_TOPIC,
        handler="apps.events.bridge.deliver_records",
        dlq=lambda: settings.KAFKA_EVENTS_DLQ_TOPIC,
        group=lambda: settings.KAFKA_BRIDGE_GROUP,
    ),
}
