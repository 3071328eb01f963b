"""Kafka clients for the events, configured in one place.

Facts that shaped this (measured with kafka-python against the Tansu broker,
see DESIGN.md): an idempotent producer must be recreated after the broker lost
its producer ids (``UnknownProducerIdError``, then ``InitProducerId`` errors),
and a restarted in-memory broker starts without topics, so both are created on
demand.
"""

import contextlib
import logging

from django.conf import settings
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

logger = logging.getLogger(__name__)


def bootstrap() -> list[str]:
    return list(settings.KAFKA_BOOTSTRAP_SERVERS)


def connection_options() -> dict:
    """How to reach the cluster securely: kafka-python's TLS and SASL options.

    Every client (producer, consumer, admin, the readiness check) takes these, so
    a managed cluster that needs TLS or SASL is configured once, in the settings
    (which refuse an incomplete configuration). Only the options the protocol
    uses are returned; kafka-python's defaults cover the rest.
    """
    protocol = settings.KAFKA_SECURITY_PROTOCOL
    options: dict = {"security_protocol": protocol}
    if protocol in {"SASL_PLAINTEXT", "SASL_SSL"}:
        options["sasl_mechanism"] = settings.KAFKA_SASL_MECHANISM or "PLAIN"
        options["sasl_plain_username"] = settings.KAFKA_SASL_USERNAME
        options["sasl_plain_password"] = settings.KAFKA_SASL_PASSWORD
    if protocol in {"SSL", "SASL_SSL"}:
        files = {
            "ssl_cafile": settings.KAFKA_SSL_CAFILE,
            "ssl_certfile": settings.KAFKA_SSL_CERTFILE,
            "ssl_keyfile": settings.KAFKA_SSL_KEYFILE,
        }
        options.update({option: path for option, path in files.items() if path})
    return options


# kafka-python waits 30 s for an unreachable broker by default; the relay and the beat
# safety net back off and try again on their own, so they give up sooner (a safety-net
# run with Kafka down took a minute holding the relay lock).
BOOTSTRAP_TIMEOUT_MS = 5_000


def producer(**overrides) -> KafkaProducer:
    """Idempotent, ``acks=all``: a retried send never duplicates or reorders a partition."""
    options = {
        "bootstrap_servers": bootstrap(),
        **connection_options(),
        "client_id": "portal-relay",
        "enable_idempotence": True,
        "acks": "all",
        # The relay appends a whole batch and then flushes, so a team's rows of one
        # batch travel as one record batch that succeeds or fails as a whole: a failed
        # batch can't leave later rows of the same team on the topic ahead of it.
        "linger_ms": 100,
        "batch_size": 1_048_576,
        "max_request_size": 4_194_304,
        "max_in_flight_requests_per_connection": 1,
        "request_timeout_ms": 10_000,
        "max_block_ms": 10_000,
        "retry_backoff_ms": 100,
        "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
    }
    options.update(overrides)
    return KafkaProducer(**options)


def consumer(topic: str, *, group_id: str, **overrides) -> KafkaConsumer:
    options = {
        "bootstrap_servers": bootstrap(),
        **connection_options(),
        "group_id": group_id,
        "client_id": f"{group_id}-consumer",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.KAFKA_SESSION_TIMEOUT_MS,
        "heartbeat_interval_ms": settings.KAFKA_HEARTBEAT_INTERVAL_MS,
        "fetch_max_wait_ms": 20,
        "max_poll_records": 1000,
    }
    options.update(overrides)
    return KafkaConsumer(topic, **options)


def ensure_topics(*topics: str, partitions: int | None = None) -> None:
    """Create missing topics (a managed cluster that forbids this needs them made first)."""
    partitions = partitions or settings.KAFKA_EVENTS_PARTITIONS
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap(),
            client_id="portal-admin",
            request_timeout_ms=10_000,
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
            **connection_options(),
        )
    except KafkaError as error:
        logger.warning("kafka admin unavailable", extra={"error": repr(error)})
        return
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(
                    [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
                )
    except KafkaError as error:
        logger.warning("could not create topics", extra={"error": repr(error)})
    finally:
        admin.close()
