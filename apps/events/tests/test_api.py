"""``/api/v1/teams/{slug}/events`` and its server-sent-events stream; the embedded default."""

import http.client
import threading
import time

import pytest

from apps.events.models import OutboxEvent
from apps.events.tests.helpers import WsListener
from apps.keys import services as key_services
from apps.keys.tests.factories import make_key
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db


def _team():
    team = TeamFactory()
    return team, member_of(team, Role.ADMIN)


def test_list_filters_and_pages_by_cursor(client):
    team, admin = _team()
    other, other_admin = _team()
    for i in range(5):
        key_services.key_create(team=team, actor=admin, name=f"k{i}", scopes=["read"])
    key_services.key_create(team=other, actor=other_admin, name="theirs", scopes=["read"])
    _key, raw = make_key(team, admin, scopes=["read"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    url = f"/api/v1/teams/{team.slug}/events"
    first = client.get(url, {"limit": 4, "type": "key.created"}, **auth).json()
    assert len(first["items"]) == 4 and first["next_cursor"]
    second = client.get(
        url, {"limit": 4, "type": "key.created", "cursor": first["next_cursor"]}, **auth
    ).json()
    names = [e["data"]["name"] for e in first["items"] + second["items"]]
    assert names == ["CI key", "k4", "k3", "k2", "k1", "k0"]
    assert second["next_cursor"] is None
    assert all(e["teamid"] == str(team.pk) for e in first["items"] + second["items"])
    assert client.get(f"/api/v1/teams/{other.slug}/events", **auth).status_code in (403, 404)


def test_api_events_without_a_team_in_the_path(client):
    """``/api/v1/events``: a key's own team; a signed-in member names it with ?team=."""
    team, admin = _team()
    other, _other_admin = _team()
    key_services.key_create(team=team, actor=admin, name="mine", scopes=["read"])
    _key, raw = make_key(team, admin, scopes=["read"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    implied = client.get("/api/v1/events", {"type": "key.created"}, **auth)
    assert implied.status_code == 200
    assert (
        implied.json()
        == client.get(f"/api/v1/teams/{team.slug}/events", {"type": "key.created"}, **auth).json()
    )
    assert all(e["teamid"] == str(team.pk) for e in implied.json()["items"])
    assert client.get("/api/v1/events", {"team": other.slug}, **auth).status_code == 404
    chat_only = make_key(team, admin, scopes=["chat"])[1]
    refused = client.get("/api/v1/events/stream", HTTP_AUTHORIZATION=f"Bearer {chat_only}")
    assert refused.status_code == 403

    client.force_login(admin)
    assert client.get("/api/v1/events").status_code == 400
    assert client.get("/api/v1/events", {"team": team.slug}).status_code == 200
    assert client.get("/api/v1/events", {"team": other.slug}).status_code == 404


def test_a_key_without_read_scope_is_refused(client):
    team, admin = _team()
    _key, raw = make_key(team, admin, scopes=["chat"])
    response = client.get(f"/api/v1/teams/{team.slug}/events", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 403
    response = client.get(
        f"/api/v1/teams/{team.slug}/events/stream", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    assert response.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_embedded_default_hands_events_to_the_page_and_the_stream(settings, asgi_live_server):
    """No Kafka: on commit, the event goes straight to the channel layer."""
    settings.KAFKA_BOOTSTRAP_SERVERS = []
    team, admin = _team()
    _key, raw = make_key(team, admin, scopes=["read"])
    lines: list[str] = []
    connected = threading.Event()

    def read_stream():
        conn = http.client.HTTPConnection("127.0.0.1", asgi_live_server.port, timeout=20)
        conn.request(
            "GET",
            f"/api/v1/teams/{team.slug}/events/stream",
            headers={"Authorization": f"Bearer {raw}"},
        )
        response = conn.getresponse()
        assert response.status == 200
        while raw_line := response.readline():
            line = raw_line.decode().rstrip("\n")
            connected.set()
            lines.append(line)
            # the setup's own key.created may still be on its way (events are handed
            # over in batches): read on to the one this test makes
            if line.startswith("data:") and '"Live"' in line:
                break
        conn.close()

    reader = threading.Thread(target=read_stream, daemon=True)
    reader.start()
    with WsListener(asgi_live_server.url, f"/ws/teams/{team.slug}/events/", admin) as ws:
        assert connected.wait(10)
        time.sleep(0.3)
        key_services.key_create(team=team, actor=admin, name="Live", scopes=["read"])
        (frame,) = ws.wait_for(1, timeout=10)
        assert frame["data"]["name"] == "Live"
    reader.join(10)
    assert "event: key.created" in lines
    assert any(line.startswith("data:") and '"Live"' in line for line in lines)
    deadline = time.monotonic() + 5  # stamped right after the hand-off, not before it
    while OutboxEvent.objects.get(event_id=frame["id"]).published_at is None:
        assert time.monotonic() < deadline, "the delivered row was never stamped"
        time.sleep(0.02)
