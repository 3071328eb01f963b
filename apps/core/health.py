"""Reachability checks for the backing services, used by ``/readyz``.

Each check returns ``None`` when the service answers, or a short reason. A
service that is not configured (the embedded default) is reported as skipped
rather than failed.
"""

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = 2


def check_database() -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return None


def check_redis() -> str | None:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=TIMEOUT_SECONDS,
        socket_timeout=TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()
    return None


def check_kafka() -> str | None:
    from kafka import KafkaAdminClient

    from apps.events.kafka import connection_options

    admin = KafkaAdminClient(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
        client_id="portal-readyz",
        request_timeout_ms=TIMEOUT_SECONDS * 1000,
        bootstrap_timeout_ms=TIMEOUT_SECONDS * 1000,
        **connection_options(),
    )
    try:
        admin.list_topics()
    finally:
        admin.close()
    return None


def configured_checks() -> dict[str, Callable[[], str | None] | None]:
    """Checks to run, by service name; ``None`` marks a service not configured."""
    return {
        "database": check_database,
        "redis": check_redis if settings.REDIS_URL else None,
        "kafka": check_kafka if settings.KAFKA_BOOTSTRAP_SERVERS else None,
    }


def run_checks() -> dict[str, str]:
    """Run every check; the result maps service name to ``ok``, ``skipped`` or the failure."""
    results: dict[str, str] = {}
    for name, check in configured_checks().items():
        if check is None:
            results[name] = "skipped"
            continue
        try:
            problem = check()
        except Exception as exc:
            logger.warning("readiness check failed", extra={"service": name, "error": repr(exc)})
            problem = f"unreachable: {type(exc).__name__}"
        results[name] = problem or "ok"
    return results
