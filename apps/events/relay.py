"""The relay: outbox rows -> the Kafka topic, in order, each marked once published.

One relay publishes at a time: it holds a PostgreSQL advisory lock (a second
relay waits as a standby, and the beat safety net only acts while no relay
holds it), so rows leave in ``sequence`` order, keyed by team id so a team's
order holds in its partition. A NOTIFY written by :func:`apps.events.outbox.emit`
(delivered by PostgreSQL only on commit) wakes it; without one it looks every
``EVENTS_RELAY_POLL_SECONDS``. Kafka down: rows wait in the outbox, the relay
backs off (exponentially, capped) and recreates its producer, then drains the
backlog. Restarted, it starts again from the oldest unpublished row.
"""

import logging
import random
import threading
import time
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.db import close_old_connections, connection
from kafka.errors import KafkaError

from apps.events import envelope, kafka, outbox
from apps.events.models import OutboxEvent

logger = logging.getLogger(__name__)
LOCK_ID = 0x706F7274616C  # "portal"
_LIBPQ_OPTIONS = {"sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout"}


class PublishError(Exception):
    pass


class KafkaPublisher:
    def __init__(self, topic: str | None = None):
        self.topic = topic or settings.KAFKA_EVENTS_TOPIC
        self._producer = None

    def connect(self) -> None:
        if self._producer is None:
            kafka.ensure_topics(self.topic, settings.KAFKA_EVENTS_DLQ_TOPIC)
            self._producer = kafka.producer()
            self._producer.partitions_for(self.topic)  # metadata now, not at the first send

    def reset(self) -> None:
        """Drop the producer; the next publish makes a new one (new producer id)."""
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception:
                logger.debug("closing a broken producer failed", exc_info=True)
            self._producer = None

    def publish(self, rows: list[OutboxEvent]) -> int:
        """Send the rows in order; returns how many of the first ones are on the topic."""
        self.connect()
        futures = [
            self._producer.send(
                self.topic,
                key=str(row.team_id).encode(),
                value=envelope.dumps(envelope.build(row)),
                headers=[("ce_type", row.type.encode()), ("ce_id", str(row.event_id).encode())],
            )
            for row in rows
        ]
        self._producer.flush(timeout=30)
        done, failure = 0, None
        for future in futures:
            try:
                future.get(timeout=0)
            except KafkaError as error:
                failure = error
                break
            done += 1
        if failure is not None:
            if not done:
                raise PublishError(repr(failure))
            self.reset()  # the published prefix is marked; the rest goes again
        return done

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(timeout=5)
        self.reset()


class ChannelLayerPublisher:
    """The embedded default (no Kafka): straight to the channel layer."""

    def connect(self) -> None:
        pass

    def reset(self) -> None:
        pass

    def publish(self, rows: list[OutboxEvent]) -> int:
        from apps.events import realtime

        realtime.deliver([envelope.build(row) for row in rows])
        return len(rows)

    def close(self) -> None:
        pass


def default_publisher():
    return KafkaPublisher() if settings.KAFKA_BOOTSTRAP_SERVERS else ChannelLayerPublisher()


def publish_batch(publisher, *, batch_size: int, older_than=None) -> int:
    """Publish the oldest unpublished rows; returns how many were published."""
    rows = OutboxEvent.objects.filter(published_at__isnull=True)
    if older_than is not None:
        rows = rows.filter(time__lt=older_than)
    rows = list(rows.order_by("sequence")[:batch_size])
    if not rows:
        return 0
    try:
        done = publisher.publish(rows)
    except (KafkaError, PublishError) as error:
        publisher.reset()
        raise PublishError(str(error)) from error
    outbox.mark_published([row.pk for row in rows[:done]])
    return done


def _listen_params() -> dict:
    db = connection.settings_dict
    params = {
        "dbname": db["NAME"],
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
    }
    params.update({k: v for k, v in (db.get("OPTIONS") or {}).items() if k in _LIBPQ_OPTIONS})
    return {k: v for k, v in params.items() if v is not None}


class Waker:
    """LISTEN on a connection of its own, which also holds the relay's advisory lock."""

    def __init__(self):
        self.conn = None
        if connection.vendor == "postgresql":
            self.conn = psycopg.connect(**_listen_params(), autocommit=True)
            self.conn.execute(f"LISTEN {outbox.NOTIFY_CHANNEL}")

    def try_lock(self) -> bool:
        if self.conn is None:
            return True
        row = self.conn.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_ID]).fetchone()
        return bool(row[0])

    def wait(self, seconds: float) -> None:
        if self.conn is None:
            time.sleep(min(seconds, 0.05))
            return
        for _notify in self.conn.notifies(timeout=seconds, stop_after=1):
            pass

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


@contextmanager
def relay_lock_free():
    """For the safety net: yields True while no relay holds the lock (and holds it)."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_ID])
        got = cursor.fetchone()[0]
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_ID])


class Relay:
    def __init__(self, publisher=None, *, stop: threading.Event | None = None):
        self.publisher = publisher or default_publisher()
        self.stop = stop or threading.Event()
        self.batch_size = settings.EVENTS_RELAY_BATCH_SIZE
        self.poll = settings.EVENTS_RELAY_POLL_SECONDS
        self.max_backoff = settings.EVENTS_RELAY_MAX_BACKOFF_SECONDS
        self.published = 0

    def _connect(self) -> None:
        delay = 0.5
        while not self.stop.is_set():
            try:
                self.publisher.connect()
                logger.info("relay connected to kafka")
                return
            except KafkaError as error:
                self.publisher.reset()
                logger.warning("kafka unavailable, retrying", extra={"error": repr(error)})
                self.stop.wait(delay)
                delay = min(delay * 2, self.max_backoff)

    def run(self) -> None:
        self._connect()
        waker = Waker()
        try:
            while not self.stop.is_set() and not waker.try_lock():
                logger.info("another relay holds the lock; standing by")
                self.stop.wait(2)
            backoff = 0.0
            while not self.stop.is_set():
                try:
                    done = publish_batch(self.publisher, batch_size=self.batch_size)
                    self.published += done
                    backoff = 0.0
                except PublishError as error:
                    backoff = min(max(backoff * 2, 0.2), self.max_backoff)
                    logger.warning(
                        "publishing failed; the rows stay in the outbox",
                        extra={"error": str(error)[:300], "retry_in": round(backoff, 2)},
                    )
                    self.stop.wait(backoff * random.uniform(0.8, 1.2))  # noqa: S311
                    continue
                finally:
                    close_old_connections()
                if done < self.batch_size:
                    waker.wait(self.poll)
        finally:
            waker.close()
            self.publisher.close()
