"""How a row of the events page reads: the key behind a call by its name (the prefix as
a hint), looked up once per batch of rows, and times on the team's clock with the date
for anything before today. The same rows reach the page's history, its gap fills and
the live feed."""

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.dashboard.tests.helpers import in_thread
from apps.events import envelope, presentation, realtime
from apps.events.models import OutboxEvent
from apps.events.tests.helpers import WsListener
from apps.inference import executor
from apps.inference import services as inference_services
from apps.inference.tests.factories import local_backend
from apps.keys.actor import KeyActor
from apps.keys.tests.factories import make_key
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

HELLO = [{"role": "user", "content": "Hi"}]


def _team(zone: str = "UTC"):
    team = TeamFactory(time_zone=zone)
    admin = member_of(team, Role.ADMIN)
    return team, admin, local_backend(team, admin)


def _call(team, key, backend):
    """What a program does with the key: a run through the shared run path."""
    return inference_services.run_create(
        team=team, actor=KeyActor(key), backend_id=backend.pk, model="local-echo", messages=HELLO
    )


def _events(team, **filters) -> list[dict]:
    rows = OutboxEvent.objects.filter(team=team, **filters).order_by("sequence")
    return [envelope.build(row) for row in rows]


@pytest.mark.django_db(transaction=True)
def test_a_keys_call_shows_the_keys_name_with_its_prefix(client):
    team, admin, backend = _team()
    key, _raw = make_key(team, admin, name="ci-bot")
    run = _call(team, key, backend)
    assert in_thread(executor.execute, run.pk) == "succeeded"
    queued = _events(team, type="run.queued")[0]
    assert queued["actor"] == f"key:{key.pk}" and queued["actorlabel"] == key.prefix

    client.force_login(admin)
    page = client.get(reverse("events:page", args=[team.slug])).content.decode()
    shown = (
        f'<span class="event-actor muted" title="API key {key.prefix}…" data-testid="event-actor">'
        f'ci-bot <small class="event-key-prefix">{key.prefix}…</small></span>'
    )
    assert page.count(shown) == 3  # queued (the key's own call), started and succeeded

    history = client.get(reverse("events:history", args=[team.slug]), {"after": 0}).json()
    by_type = {frame["type"]: frame["html"] for frame in history["events"]}
    for kind in ("run.queued", "run.started", "run.succeeded"):
        assert shown in by_type[kind]
    assert "ci-bot" not in by_type["backend.created"]  # an admin's change names the admin


@pytest.mark.django_db
def test_names_are_looked_up_once_per_batch(django_assert_num_queries):
    team, admin, backend = _team()
    keys = [make_key(team, admin, name=f"key-{i}")[0] for i in range(5)]
    for key in keys:
        for _ in range(3):
            _call(team, key, backend)
    other_key, _ = make_key(TeamFactory(), name="not-ours")
    events = _events(team, type="run.queued")
    assert len(events) == 15
    # a crafted actor naming another team's key is not resolved across teams
    events.append({**events[0], "id": "x", "actor": f"key:{other_key.pk}", "actorlabel": "aip_x"})

    with django_assert_num_queries(1):  # the keys; the page has the team
        rows = presentation.row_contexts(events, team=team)
    assert [r["actor"] for r in rows[:3]] == ["key-0"] * 3
    assert {r["actor"] for r in rows[:15]} == {f"key-{i}" for i in range(5)}
    assert rows[-1]["actor"] == "aip_x" and rows[-1]["actor_key_prefix"] == ""

    with django_assert_num_queries(2):  # the team's clock and the keys
        texts = presentation.frames(events[:15])
    assert all("key-" in json.loads(text)["html"] for text in texts)
    with django_assert_num_queries(0):  # rendered once per process
        assert presentation.frames(events[:15]) == texts
        assert presentation.cached_frames(events[:15]) == texts


@pytest.mark.django_db
def test_older_times_show_their_date_on_the_teams_clock(client):
    team, admin, backend = _team("Asia/Kolkata")
    key, _ = make_key(team, admin, name="ci-bot")
    _call(team, key, backend)
    old = OutboxEvent.objects.get(team=team, type="key.created")
    old_time = timezone.now() - timedelta(days=3)
    OutboxEvent.objects.filter(pk=old.pk).update(time=old_time)
    kolkata = ZoneInfo("Asia/Kolkata")

    rows = {r["type"]: r for r in presentation.row_contexts(_events(team), team=team)}
    then = old_time.astimezone(kolkata)
    assert rows["key.created"]["time_text"] == then.strftime("%Y-%m-%d %H:%M:%S")
    assert rows["key.created"]["time_title"] == then.strftime("%Y-%m-%d %H:%M:%S Asia/Kolkata")
    now = OutboxEvent.objects.get(team=team, type="run.queued").time.astimezone(kolkata)
    assert rows["run.queued"]["time_text"] == now.strftime("%H:%M:%S")  # today: the time only

    client.force_login(admin)
    page = client.get(reverse("events:page", args=[team.slug])).content.decode()
    assert f">{then:%Y-%m-%d %H:%M:%S}</time>" in page
    assert f">{now:%H:%M:%S}</time>" in page
    assert "Times on the team's clock (Asia/Kolkata)" in page


def test_a_rendered_row_is_kept_until_the_teams_day_ends():
    zone = ZoneInfo("America/New_York")
    today = datetime(2026, 3, 7, tzinfo=zone).date()
    lookups = presentation.Lookups(zone=zone, today=today)
    assert lookups.stale_at == datetime(2026, 3, 8, 0, 0, tzinfo=zone).timestamp()


@pytest.mark.django_db(transaction=True)
def test_the_live_feed_names_the_key(asgi_live_server):
    team, admin, backend = _team()
    key, _ = make_key(team, admin, name="deploy-bot")
    _call(team, key, backend)
    queued = _events(team, type="run.queued")
    with WsListener(asgi_live_server.url, f"/ws/teams/{team.slug}/events/", admin) as socket:
        assert socket.opened.is_set()
        in_thread(realtime.deliver, queued)  # what the bridge (or the direct hand-off) does
        frames = socket.wait_for(1)
    assert frames and frames[0]["id"] == queued[0]["id"]
    assert "deploy-bot" in frames[0]["html"] and f"{key.prefix}…" in frames[0]["html"]
