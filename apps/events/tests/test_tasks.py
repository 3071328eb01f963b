"""Beat's ``events-safety-net``: rows no relay published reach the topic (the real
Tansu broker), never while a relay holds the lock, and only one relay publishes at a
time; published rows past ``EVENTS_RETENTION_DAYS`` are deleted in batches, rows not
yet published never are."""

import json
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from kafka import KafkaConsumer, TopicPartition

from apps.events import relay, tasks
from apps.events.models import OutboxEvent
from apps.events.tests.helpers import Broker, start_relay, use_fresh_topic
from apps.keys import services as key_services
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

STUCK_FOR = timedelta(minutes=5)


def _team():
    team = TeamFactory()
    return team, member_of(team, Role.ADMIN)


def _changes(team, admin, prefix: str, n: int) -> list[OutboxEvent]:
    """Commit ``n`` changes (one ``key.created`` each); their rows, oldest first."""
    for i in range(n):
        key_services.key_create(team=team, actor=admin, name=f"{prefix}{i}", scopes=["read"])
    return list(
        OutboxEvent.objects.filter(team=team, data__name__startswith=prefix).order_by("sequence")
    )


def _emitted_ago(rows: list[OutboxEvent], age: timedelta) -> None:
    """As if these rows had been written ``age`` ago and no relay had run since."""
    OutboxEvent.objects.filter(pk__in=[r.pk for r in rows]).update(time=timezone.now() - age)


def _unpublished(rows: list[OutboxEvent]) -> int:
    return OutboxEvent.objects.filter(pk__in=[r.pk for r in rows], published_at=None).count()


def _ids(rows: list[OutboxEvent]) -> list[str]:
    return [str(r.event_id) for r in rows]


def _on_topic(topic: str, bootstrap: str) -> list:
    """Every record of the topic, partition by partition in offset order."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
    )
    try:
        partitions = sorted(consumer.partitions_for_topic(topic) or [])
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        return sorted(consumer, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close(autocommit=False)


def _ids_of_team(records, team) -> list[str]:
    """The team's event ids on the topic in the order a consumer reads them."""
    key = str(team.pk).encode()
    return [json.loads(r.value)["id"] for r in records if r.key == key]


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_the_safety_net_publishes_what_no_relay_published(kafka_bootstrap, settings):
    topic = use_fresh_topic(settings, kafka_bootstrap)
    team_a, admin_a = _team()
    team_b, admin_b = _team()
    stuck_a = _changes(team_a, admin_a, "stuck", 3)
    stuck_b = _changes(team_b, admin_b, "stuck", 2)
    _emitted_ago(stuck_a + stuck_b, STUCK_FOR)
    fresh = _changes(team_a, admin_a, "fresh", 1)  # a running relay's business, not beat's

    assert tasks.events_safety_net() == {"expired_keys": 0, "relayed": 5, "purged": 0}

    records = _on_topic(topic, kafka_bootstrap)
    assert _ids_of_team(records, team_a) == _ids(stuck_a)  # in order, each once
    assert _ids_of_team(records, team_b) == _ids(stuck_b)
    assert len(records) == 5
    assert _unpublished(stuck_a + stuck_b) == 0
    assert _unpublished(fresh) == 1

    assert tasks.relay_stuck_rows() == 0  # nothing is stuck any more
    assert len(_on_topic(topic, kafka_bootstrap)) == 5


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_the_safety_net_stays_out_while_a_relay_holds_the_lock(kafka_bootstrap, settings):
    topic = use_fresh_topic(settings, kafka_bootstrap)
    team, admin = _team()
    stuck = _changes(team, admin, "stuck", 3)
    _emitted_ago(stuck, STUCK_FOR)

    holder = relay.Waker()  # what a relay process holds the lock with, on its own connection
    try:
        assert holder.try_lock()
        assert tasks.relay_stuck_rows() == 0
        assert _unpublished(stuck) == 3
    finally:
        holder.close()  # the relay process went away

    assert tasks.relay_stuck_rows() == 3
    assert _ids_of_team(_on_topic(topic, kafka_bootstrap), team) == _ids(stuck)
    assert _unpublished(stuck) == 0


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_only_one_relay_publishes_and_a_standby_takes_over(kafka_bootstrap, settings):
    topic = use_fresh_topic(settings, kafka_bootstrap)
    team, admin = _team()
    first, second = start_relay(), start_relay()
    relays = [first, second]
    try:
        early = _changes(team, admin, "early", 10)
        deadline = time.monotonic() + 30
        while _unpublished(early):
            assert time.monotonic() < deadline, "no relay published"
            time.sleep(0.05)
        counts = sorted(r.target.published for r in relays)
        assert counts == [0, 10], counts  # one publishes, the other stands by
        active = next(r for r in relays if r.target.published)
        standby = next(r for r in relays if r is not active)
        with relay.relay_lock_free() as free:
            assert not free  # and beat's safety net keeps out

        active.halt()
        late = _changes(team, admin, "late", 5)
        deadline = time.monotonic() + 30
        while _unpublished(late):
            assert time.monotonic() < deadline, "the standby did not take over"
            time.sleep(0.05)
        assert standby.target.published == 5
    finally:
        for worker in relays:
            if worker.thread.is_alive():
                worker.halt()
    assert first.error is None and second.error is None
    assert _ids_of_team(_on_topic(topic, kafka_bootstrap), team) == _ids(early + late)


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_the_safety_net_keeps_rows_while_kafka_is_down_and_publishes_them_later(settings, tmp_path):
    broker = Broker(tmp_path / "tansu.log")
    topic = use_fresh_topic(settings, broker.address)
    team, admin = _team()
    stuck = _changes(team, admin, "stuck", 4)
    _emitted_ago(stuck, STUCK_FOR)
    try:
        assert tasks.relay_stuck_rows() == 0  # nothing listens on the broker's address
        assert _unpublished(stuck) == 4
        holder = relay.Waker()
        try:
            assert holder.try_lock(), "the safety net kept the relay's lock"
        finally:
            holder.close()

        broker.start()
        assert tasks.relay_stuck_rows() == 4
        assert _ids_of_team(_on_topic(topic, broker.address), team) == _ids(stuck)
        assert _unpublished(stuck) == 0
    finally:
        broker.stop()


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_runs_the_beat_task(kafka_bootstrap, settings, celery_workers):
    """The task as beat sends it: by name, through Redis, in a worker process."""
    from portal.celery import app

    topic = use_fresh_topic(settings, kafka_bootstrap)
    team, admin = _team()
    stuck = _changes(team, admin, "stuck", 2)
    _emitted_ago(stuck, STUCK_FOR)
    old = _changes(team, admin, "old", 2)
    OutboxEvent.objects.filter(pk__in=[r.pk for r in old]).update(
        published_at=timezone.now() - timedelta(days=settings.EVENTS_RETENTION_DAYS + 1)
    )
    celery_workers(
        concurrency=1,
        KAFKA_EVENTS_TOPIC=topic,
        KAFKA_EVENTS_DLQ_TOPIC=settings.KAFKA_EVENTS_DLQ_TOPIC,
        KAFKA_EVENTS_PARTITIONS=str(settings.KAFKA_EVENTS_PARTITIONS),
    )
    entry = settings.CELERY_BEAT_SCHEDULE["events-safety-net"]
    app.send_task(entry["task"])

    deadline = time.monotonic() + 60
    while _unpublished(stuck) or OutboxEvent.objects.filter(pk__in=[r.pk for r in old]).exists():
        assert time.monotonic() < deadline, celery_workers.log.read_text()[-3000:]
        time.sleep(0.1)
    assert _ids_of_team(_on_topic(topic, kafka_bootstrap), team) == _ids(stuck)


@pytest.mark.django_db
def test_retention_deletes_old_published_rows_in_batches_and_never_unpublished_ones(settings):
    settings.EVENTS_RETENTION_DAYS = 30
    settings.EVENTS_RETENTION_BATCH_SIZE = 3
    team, admin = _team()
    now = timezone.now()

    def published(rows, days):
        OutboxEvent.objects.filter(pk__in=[r.pk for r in rows]).update(
            time=now - timedelta(days=days), published_at=now - timedelta(days=days)
        )

    expired = _changes(team, admin, "expired", 7)
    for row, days in zip(expired, (400, 90, 45, 40, 35, 31, 30.5), strict=True):
        published([row], days)
    kept = _changes(team, admin, "kept", 2)
    published(kept, 29)
    never_published = _changes(team, admin, "waiting", 2)
    OutboxEvent.objects.filter(pk__in=[r.pk for r in never_published]).update(
        time=now - timedelta(days=400)
    )
    recent = _changes(team, admin, "recent", 1)
    published(recent, 0)

    with CaptureQueriesContext(connection) as queries:
        assert tasks.purge_published(now=now) == 7
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3, "7 rows in batches of 3"
    assert set(OutboxEvent.objects.filter(team=team).values_list("pk", flat=True)) == {
        r.pk for r in kept + never_published + recent
    }
    assert tasks.purge_published(now=now) == 0


@pytest.mark.django_db
def test_the_safety_net_purges_with_the_setting(settings):
    settings.EVENTS_RETENTION_DAYS = 7
    team, admin = _team()
    old, young = _changes(team, admin, "row", 2)
    OutboxEvent.objects.filter(pk=old.pk).update(published_at=timezone.now() - timedelta(days=8))
    OutboxEvent.objects.filter(pk=young.pk).update(published_at=timezone.now() - timedelta(days=6))

    assert tasks.events_safety_net()["purged"] == 1
    assert list(OutboxEvent.objects.filter(team=team).values_list("pk", flat=True)) == [young.pk]


def test_beat_runs_the_safety_net(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["events-safety-net"]
    assert entry["task"] == "apps.events.tasks.events_safety_net"
    assert entry["task"] == tasks.events_safety_net.name
