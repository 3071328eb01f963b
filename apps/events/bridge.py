"""The bridge: the Kafka topic -> each team's channel-layer group -> browsers.

Several bridge processes share the topic's partitions as one consumer group.
Each batch is validated (a foreign or malformed message, an unknown type, or a
message whose key names another team goes to the dead-letter topic and is
skipped), deduplicated by event id (ids already delivered are remembered in
the cache for ``EVENTS_DEDUPE_SECONDS``), delivered in order per team, and only
then are the offsets committed: a bridge that dies mid-batch is replayed by
whoever takes its partitions, and the dedupe keeps that from showing twice.
"""

import logging
import threading
from importlib import import_module

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections
from kafka.errors import KafkaError

from apps.events import envelope, kafka, realtime
from apps.events.consumers_registry import CONSUMERS

logger = logging.getLogger(__name__)


def _seen_key(event_id: str) -> str:
    return f"events:delivered:{event_id}"


def deliver_records(records) -> list[tuple[object, str]]:
    """Handler of ``events-bridge``; returns the records to dead-letter, with why."""
    dead: list[tuple[object, str]] = []
    events: list[dict] = []
    for record in records:
        try:
            events.append(envelope.parse(record.value, key=record.key))
        except envelope.InvalidEvent as error:
            logger.warning(
                "bridge skipped a message",
                extra={
                    "reason": error.reason,
                    "detail": str(error)[:200],
                    "partition": record.partition,
                    "offset": record.offset,
                },
            )
            dead.append((record, error.reason))
    fresh, ids = [], set()
    seen = cache.get_many([_seen_key(e["id"]) for e in events]) if events else {}
    for event in events:
        if _seen_key(event["id"]) in seen or event["id"] in ids:
            continue
        ids.add(event["id"])
        fresh.append(event)
    if fresh:
        realtime.deliver(fresh)
        cache.set_many({_seen_key(i): 1 for i in ids}, timeout=settings.EVENTS_DEDUPE_SECONDS)
    return dead


class ConsumerRunner:
    def __init__(self, name: str, *, stop: threading.Event | None = None, **consumer_options):
        self.spec = CONSUMERS[name]
        self.name = name
        self.stop = stop or threading.Event()
        self.options = consumer_options
        module, _, attr = self.spec.handler.rpartition(".")
        self.handler = getattr(import_module(module), attr)
        self.handled = 0
        self.dead_lettered = 0
        self._topic_id = None
        self._consumer = None

    def assigned_partitions(self) -> int:
        """How many of the topic's partitions this runner reads now (0 while joining)."""
        consumer = self._consumer
        return len(consumer.assignment()) if consumer is not None else 0

    def _topic_recreated(self, consumer) -> bool:
        """Whether the topic was deleted and created again since the last batch (an
        in-memory broker after a restart, or an operator): positions then point into a
        new log, and everything in it must be read from the start (the dedupe skips what
        was delivered before)."""
        current = consumer._client.cluster.topic_id(self.spec.topic())
        if current is None:
            return False
        previous, self._topic_id = self._topic_id, current
        return previous is not None and previous != current

    def _connect(self):
        delay = 0.5
        while not self.stop.is_set():
            try:
                kafka.ensure_topics(self.spec.topic(), self.spec.dlq())
                consumer = kafka.consumer(
                    self.spec.topic(), group_id=self.spec.group(), **self.options
                )
                dlq = kafka.producer(client_id=f"{self.name}-dlq")
                logger.info("consumer connected", extra={"consumer": self.name})
                return consumer, dlq
            except KafkaError as error:
                logger.warning("kafka unavailable, retrying", extra={"error": repr(error)})
                self.stop.wait(delay)
                delay = min(delay * 2, 30)
        return None, None

    def _dead_letter(self, dlq, dead) -> None:
        for record, reason in dead:
            headers = [
                ("reason", reason.encode()),
                ("source-topic", record.topic.encode()),
                ("source-partition", str(record.partition).encode()),
                ("source-offset", str(record.offset).encode()),
            ]
            dlq.send(self.spec.dlq(), key=record.key, value=record.value, headers=headers)
        dlq.flush(timeout=30)
        self.dead_lettered += len(dead)

    def run(self) -> None:
        consumer, dlq = self._connect()
        if consumer is None:
            return
        self._consumer = consumer
        rewind = False
        try:
            while not self.stop.is_set():
                try:
                    batches = consumer.poll(timeout_ms=200)
                    records = [r for batch in batches.values() for r in batch]
                    if self._topic_recreated(consumer):
                        logger.warning("topic was recreated; reading it from the start")
                        rewind = True
                    if rewind:
                        assigned = [
                            tp for tp in consumer.assignment() if tp.topic == self.spec.topic()
                        ]
                        if assigned:
                            consumer.seek_to_beginning(*assigned)
                            rewind = False
                        continue
                    if not records:
                        continue
                    dead = self.handler(records)
                    if dead:
                        self._dead_letter(dlq, dead)
                    consumer.commit()
                    self.handled += len(records)
                except KafkaError as error:
                    # Not committed: the batch comes again (to us or another bridge) and
                    # the dedupe skips what was already delivered.
                    logger.warning("consumer error, retrying", extra={"error": repr(error)})
                    self.stop.wait(0.5)
                finally:
                    close_old_connections()
        finally:
            try:
                consumer.close(autocommit=False)
            finally:
                dlq.close(timeout=5)


def run_consumer(name: str, *, stop: threading.Event | None = None, **options) -> ConsumerRunner:
    runner = ConsumerRunner(name, stop=stop, **options)
    runner.run()
    return runner
