"""Outbox -> relay -> Kafka (the real Tansu broker) -> bridge -> a real WebSocket."""

import time

import pytest
from django.db import transaction
from kafka import KafkaConsumer, KafkaProducer

from apps.events import envelope
from apps.events.models import OutboxEvent
from apps.events.tests.helpers import (
    WsListener,
    start_bridge,
    start_relay,
    use_fresh_topic,
)
from apps.keys import services as key_services
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = [pytest.mark.kafka, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pipeline(kafka_bootstrap, settings, asgi_live_server):
    topic = use_fresh_topic(settings, kafka_bootstrap)
    relay = start_relay()
    bridge = start_bridge()
    yield {"topic": topic, "server": asgi_live_server, "relay": relay, "bridge": bridge}
    for worker in (bridge, relay):
        if worker.thread.is_alive():
            worker.halt()
        assert worker.error is None, worker.error


def _team():
    team = TeamFactory()
    return team, member_of(team, Role.ADMIN)


def _ws(server, team, user):
    return WsListener(server.url, f"/ws/teams/{team.slug}/events/", user)


def test_a_committed_change_reaches_its_team_and_no_other(pipeline):
    server = pipeline["server"]
    team_a, admin_a = _team()
    team_b, admin_b = _team()
    with _ws(server, team_a, admin_a) as ws_a, _ws(server, team_b, admin_b) as ws_b:
        assert ws_a.opened.is_set() and ws_b.opened.is_set()
        key, _raw = key_services.key_create(team=team_a, actor=admin_a, name="A", scopes=["read"])
        (frame,) = ws_a.wait_for(1)
        assert frame["type"] == "key.created"
        assert frame["data"]["key_id"] == key.pk
        assert 'data-testid="event-row"' in frame["html"]
        key_services.key_create(team=team_b, actor=admin_b, name="B", scopes=["read"])
        ws_b.wait_for(1)
        time.sleep(1)
        assert [f["type"] for f in ws_a.frames] == ["key.created"]
        assert [f["data"]["name"] for f in ws_b.frames] == ["B"]
    row = OutboxEvent.objects.get(event_id=frame["id"])
    assert row.published_at is not None


def test_a_rolled_back_change_emits_nothing(pipeline):
    server = pipeline["server"]
    team, admin = _team()
    with _ws(server, team, admin) as ws:
        with pytest.raises(RuntimeError), transaction.atomic():
            key_services.key_create(team=team, actor=admin, name="Gone", scopes=["read"])
            raise RuntimeError("roll back")
        key_services.key_create(team=team, actor=admin, name="Kept", scopes=["read"])
        ws.wait_for(1)
        time.sleep(1)
        assert [f["data"]["name"] for f in ws.frames] == ["Kept"]
    assert not OutboxEvent.objects.filter(team=team, data__name="Gone").exists()


@pytest.mark.parametrize("who", ["anonymous", "outsider", "other-team-slug"])
def test_websocket_refuses_strangers(pipeline, who):
    server = pipeline["server"]
    team, _admin = _team()
    other, other_admin = _team()
    user = None if who == "anonymous" else other_admin
    with _ws(server, team, user) as ws:
        ws.finished.wait(10)
        assert not ws.opened.is_set() or ws.close_code == 4403
        key_services.key_create(team=team, actor=_admin, name="Private", scopes=["read"])
        time.sleep(1)
        assert ws.frames == []
    del other


def test_poisoned_messages_go_to_the_dead_letter_topic(pipeline, kafka_bootstrap):
    server, topic = pipeline["server"], pipeline["topic"]
    team, admin = _team()
    other, _ = _team()
    key, _raw = key_services.key_create(team=team, actor=admin, name="Seed", scopes=["read"])
    good = envelope.build(OutboxEvent.objects.get(key_id=key.pk, type="key.created"))
    unknown = {**good, "type": "team.exploded", "id": "00000000-0000-0000-0000-000000000001"}
    foreign_team = {**good, "id": "00000000-0000-0000-0000-000000000002"}
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    with _ws(server, team, admin) as ws:
        poison = [
            (str(team.pk).encode(), b"\x00\x01 not json"),
            (str(team.pk).encode(), b'{"hello": "world"}'),
            (str(team.pk).encode(), envelope.dumps(unknown)),
            (str(other.pk).encode(), envelope.dumps(foreign_team)),  # key names another team
        ]
        for key_bytes, value in poison:
            producer.send(topic, key=key_bytes, value=value)
        producer.flush()
        producer.close()
        key_services.key_create(team=team, actor=admin, name="After", scopes=["read"])
        deadline = time.monotonic() + 20
        while "After" not in [f["data"].get("name") for f in ws.frames]:
            assert time.monotonic() < deadline, ws.frames
            time.sleep(0.05)
        assert all(f["type"] == "key.created" for f in ws.frames)
    dlq = KafkaConsumer(
        f"{topic}.dlq",
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    reasons = sorted(dict(m.headers)["reason"].decode() for m in dlq)
    dlq.close()
    assert reasons == ["not_an_envelope", "not_json", "unknown_type", "wrong_team"]
    assert pipeline["bridge"].thread.is_alive()
