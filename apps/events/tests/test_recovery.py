"""Nothing lost, nothing twice: a broker outage and a bridge restart mid-stream."""

import threading
import time
from collections import defaultdict

import pytest
from kafka.partitioner.default import murmur2

from apps.events.models import OutboxEvent
from apps.events.tests.helpers import (
    Broker,
    WsListener,
    start_bridge,
    start_relay,
    use_fresh_topic,
)
from apps.keys import services as key_services
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = [pytest.mark.kafka, pytest.mark.django_db(transaction=True)]


def _team():
    team = TeamFactory()
    return team, member_of(team, Role.ADMIN)


def _teams_on_every_partition(partitions: int) -> list:
    """Teams whose ids (the relay's message key) hash to every partition, the way the
    producer's default partitioner does, so each bridge of the group gets some events
    whichever partitions it is assigned; team ids alone depend on the tests before."""
    teams, covered = [], set()
    while len(covered) < partitions:
        team, admin = _team()
        partition = (murmur2(str(team.pk).encode()) & 0x7FFFFFFF) % partitions
        if partition not in covered:
            covered.add(partition)
            teams.append((team, admin))
    return teams


def _changes(team, admin, n: int, prefix: str) -> None:
    for i in range(n):
        key_services.key_create(team=team, actor=admin, name=f"{prefix}{i}", scopes=["read"])


def _expected(team) -> list[str]:
    return [
        str(e)
        for e in OutboxEvent.objects.filter(team=team)
        .order_by("sequence")
        .values_list("event_id", flat=True)
    ]


def _wait_all(ws: WsListener, expected: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not set(expected) <= set(ws.ids()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1)  # any duplicate would arrive right behind


def test_broker_stopped_and_restarted_every_event_arrives_once_in_order(
    settings, asgi_live_server, tmp_path
):
    broker = Broker(tmp_path / "tansu.log").start()
    use_fresh_topic(settings, broker.address)
    team_a, admin_a = _team()
    team_b, admin_b = _team()
    relay = start_relay()
    bridge = start_bridge()
    try:
        with (
            WsListener(asgi_live_server.url, f"/ws/teams/{team_a.slug}/events/", admin_a) as ws_a,
            WsListener(asgi_live_server.url, f"/ws/teams/{team_b.slug}/events/", admin_b) as ws_b,
        ):
            _changes(team_a, admin_a, 3, "before")
            assert len(ws_a.wait_for(3, timeout=60)) == 3
            broker.stop()
            _changes(team_a, admin_a, 10, "down-a")
            _changes(team_b, admin_b, 10, "down-b")
            time.sleep(2)
            assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 20
            broker.start()  # empty: topics, offsets and producer ids are gone
            _changes(team_b, admin_b, 2, "after")
            for ws, team in ((ws_a, team_a), (ws_b, team_b)):
                expected = _expected(team)
                _wait_all(ws, expected)
                ids = ws.ids()
                assert len(ids) == len(set(ids)) == len(expected)  # every one, once
                # The page places rows by sequence. A restarted in-memory broker reuses
                # offsets, so a batch fetched before the bridge sees the new topic id can
                # arrive ahead of older rows (real Kafka keeps its log; see README).
                by_sequence = sorted(ws.frames, key=lambda f: f["sequence"])
                assert [f["id"] for f in by_sequence] == expected
            assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()
    finally:
        bridge.halt(30)
        relay.halt(30)
        broker.stop()
    assert relay.error is None and bridge.error is None


def test_a_bridge_restarted_mid_stream_neither_loses_nor_repeats(
    kafka_bootstrap, settings, asgi_live_server
):
    use_fresh_topic(settings, kafka_bootstrap)
    team, admin = _team()
    relay = start_relay()
    bridge = start_bridge()
    done = threading.Event()

    def produce():
        from django.db import connection

        try:
            _changes(team, admin, 60, "stream")
        finally:
            connection.close()
            done.set()

    try:
        with WsListener(asgi_live_server.url, f"/ws/teams/{team.slug}/events/", admin) as ws:
            _changes(team, admin, 2, "warm")
            ws.wait_for(2)
            writer = threading.Thread(target=produce, daemon=True)
            writer.start()
            ws.wait_for(10)
            bridge.halt()  # mid-stream
            time.sleep(0.5)
            bridge = start_bridge()  # a new process of the same group takes over
            writer.join(60)
            expected = _expected(team)
            _wait_all(ws, expected)
            counts = defaultdict(int)
            for event_id in ws.ids():
                counts[event_id] += 1
            assert [i for i, n in counts.items() if n > 1] == []
            assert ws.ids() == expected
    finally:
        bridge.halt()
        relay.halt()


def test_two_bridges_share_the_partitions_and_deliver_each_event_once(
    kafka_bootstrap, settings, asgi_live_server
):
    """Two bridge processes of one consumer group split the topic's partitions: every
    team's events arrive once, in order, whichever bridge read them."""
    use_fresh_topic(settings, kafka_bootstrap)
    teams = _teams_on_every_partition(settings.KAFKA_EVENTS_PARTITIONS)
    relay = start_relay()
    bridges = [start_bridge(), start_bridge()]
    try:
        listeners = [
            WsListener(asgi_live_server.url, f"/ws/teams/{team.slug}/events/", admin)
            for team, admin in teams
        ]
        for ws in listeners:
            ws.__enter__()
        deadline = time.monotonic() + 30  # both bridges joined the group: each has partitions
        while time.monotonic() < deadline:
            owned = [b.target.assigned_partitions() for b in bridges]
            if all(owned) and sum(owned) == settings.KAFKA_EVENTS_PARTITIONS:
                break
            time.sleep(0.1)
        assert all(owned), owned
        for team, admin in teams:
            _changes(team, admin, 5, "shared")
        for (team, _admin), ws in zip(teams, listeners, strict=True):
            expected = _expected(team)
            _wait_all(ws, expected)
            assert ws.ids() == expected
        assert all(b.target.handled for b in bridges), [b.target.handled for b in bridges]
        assert (
            sum(b.target.handled for b in bridges)
            == OutboxEvent.objects.filter(team__in=[t for t, _ in teams]).count()
        )
    finally:
        for ws in listeners:
            ws.__exit__(None, None, None)
        for bridge in bridges:
            bridge.halt()
        relay.halt()
