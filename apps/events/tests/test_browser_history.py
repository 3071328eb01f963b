"""The events page in Chromium, where it reads history: "replay from" a time (read
back from the Tansu topic), a dropped WebSocket that reconnects by itself and fills
the gap from the log, and pause/resume across such a reconnect.

Events travel the real way: a service commits an outbox row, the relay publishes it
to Tansu, the bridge hands it to the channel layer, the page's socket gets it. The
socket drops because the web server goes away (as in a deploy) and comes back on the
same address.
"""

import re
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from playwright.sync_api import expect

from apps.events.models import OutboxEvent
from apps.events.tests.helpers import session_cookie, start_bridge, start_relay, use_fresh_topic
from apps.keys import services as key_services
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of
from conftest import AsgiLiveServer

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.django_db(transaction=True)]

# Not UTC, and not a whole hour away from it: the page must turn the local time the
# user picks into the right instant.
ZONE = "Asia/Kolkata"


class SamePortServer(AsgiLiveServer):
    """The web server started again where the page expects it."""

    def __init__(self, port: int):
        super().__init__()
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server.config.port = port


@pytest.fixture
def local_page(browser, asgi_live_server):
    """A page whose browser clock runs in ``ZONE``."""
    expect.set_options(timeout=15_000)
    context = browser.new_context(base_url=asgi_live_server.url, timezone_id=ZONE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _sign_in(page, server, user):
    page.context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": session_cookie(user),
                "url": server.url,
            }
        ]
    )


def _team():
    team = TeamFactory()
    return team, member_of(team, Role.ADMIN)


def _changes(team, admin, prefix: str, n: int) -> list[str]:
    """Commit ``n`` changes (one ``key.created`` each); their event ids, oldest first."""
    for i in range(n):
        key_services.key_create(team=team, actor=admin, name=f"{prefix}{i}", scopes=["read"])
    rows = OutboxEvent.objects.filter(team=team, data__name__startswith=prefix)
    return [str(e) for e in rows.order_by("sequence").values_list("event_id", flat=True)]


def _wait_published(event_ids: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    unpublished = OutboxEvent.objects.filter(event_id__in=event_ids, published_at__isnull=True)
    while unpublished.exists():
        assert time.monotonic() < deadline, "the relay did not publish the rows"
        time.sleep(0.05)


def _wait_bridged(bridge, count: int, timeout: float = 30) -> None:
    """Until the bridge has handed ``count`` records of the test's topic to the layer."""
    deadline = time.monotonic() + timeout
    while bridge.target.handled < count:
        assert time.monotonic() < deadline, "the bridge did not pass the events on"
        time.sleep(0.05)


def _next_second():
    """The next whole second (what a user can type), once it has passed."""
    at = timezone.now().replace(microsecond=0) + timedelta(seconds=1)
    while timezone.now() <= at:
        time.sleep(0.05)
    return at


def _as_typed(moment) -> str:
    """``moment`` as the page's datetime-local input holds it in the browser's zone."""
    return moment.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M:%S")


def _feed_ids(page) -> list[str]:
    return page.get_by_test_id("event-row").evaluate_all("rows => rows.map(r => r.dataset.id)")


def _replay(page, since) -> None:
    page.get_by_test_id("replay-since").fill(_as_typed(since))
    with page.expect_response(lambda r: "/events/replay/" in r.url) as response:
        page.get_by_test_id("replay").click()
    assert response.value.ok


def _down(server) -> None:
    server.__exit__(None, None, None)
    assert not server.thread.is_alive(), "the web server did not stop"


def test_replay_from_a_time_shows_exactly_the_events_since_then(
    local_page, asgi_live_server, kafka_bootstrap, settings
):
    page = local_page
    use_fresh_topic(settings, kafka_bootstrap)
    team, admin = _team()
    relay, bridge = start_relay(), start_bridge()
    try:
        older = _changes(team, admin, "older", 3)
        _wait_published(older)
        since = _next_second()
        newer = _changes(team, admin, "newer", 3)
        _wait_bridged(bridge, 6)  # all delivered before the page opens

        _sign_in(page, asgi_live_server, admin)
        page.goto(f"/t/{team.slug}/events/")
        status = page.get_by_test_id("events-status")
        expect(status).to_have_text("live")
        rows = page.get_by_test_id("event-row")
        expect(rows).to_have_count(6)  # the page opens with the recent history

        _replay(page, since)
        expect(rows).to_have_count(3)
        assert _feed_ids(page) == newer[::-1]  # newest first, nothing older than T

        # A time after the last event: there is nothing since then (the broker's
        # answer for "no offset at that time" must not bring the log back).
        later = _next_second()
        _replay(page, later)
        expect(rows).to_have_count(0)

        live = _changes(team, admin, "live", 1)  # the feed stays live after a replay
        expect(rows).to_have_count(1)
        assert _feed_ids(page) == live
        expect(status).to_have_text("live")
    finally:
        bridge.halt()
        relay.halt()
    assert relay.error is None and bridge.error is None


def test_replay_goes_by_when_events_happened_not_when_kafka_got_them(
    local_page, asgi_live_server, kafka_bootstrap, settings
):
    """Rows that waited in the outbox (no relay running) reach the topic after T;
    they happened before T, so a replay from T leaves them out."""
    page = local_page
    use_fresh_topic(settings, kafka_bootstrap)
    team, admin = _team()
    bridge = start_bridge()
    relay = None
    try:
        waited = _changes(team, admin, "waited", 3)
        since = _next_second()
        relay = start_relay()
        _wait_published(waited)
        assert OutboxEvent.objects.filter(event_id__in=waited, published_at__gt=since).count() == 3
        newer = _changes(team, admin, "newer", 2)
        _wait_bridged(bridge, 5)

        _sign_in(page, asgi_live_server, admin)
        page.goto(f"/t/{team.slug}/events/")
        expect(page.get_by_test_id("events-status")).to_have_text("live")
        rows = page.get_by_test_id("event-row")
        expect(rows).to_have_count(5)

        _replay(page, since)
        expect(rows).to_have_count(2)
        assert _feed_ids(page) == newer[::-1]
    finally:
        bridge.halt()
        if relay is not None:
            relay.halt()
    assert bridge.error is None and (relay is None or relay.error is None)


def test_a_dropped_socket_reconnects_and_fills_the_gap(
    page, asgi_live_server, kafka_bootstrap, settings
):
    use_fresh_topic(settings, kafka_bootstrap)
    team, admin = _team()
    relay, bridge = start_relay(), start_bridge()
    restarted = None
    try:
        before = _changes(team, admin, "before", 2)
        _wait_bridged(bridge, 2)
        _sign_in(page, asgi_live_server, admin)
        page.goto(f"/t/{team.slug}/events/")
        status = page.get_by_test_id("events-status")
        expect(status).to_have_text("live")
        rows = page.get_by_test_id("event-row")
        expect(rows).to_have_count(2)

        _down(asgi_live_server)
        expect(status).to_have_attribute("data-state", re.compile(r"^(reconnecting|connecting)$"))
        missed = _changes(team, admin, "missed", 3)
        _wait_bridged(bridge, 5)  # passed on to the team's group while no socket listened
        expect(rows).to_have_count(2)

        with page.expect_response(lambda r: "/events/history/" in r.url, timeout=30_000) as gap:
            restarted = SamePortServer(asgi_live_server.port).__enter__()
        last_shown = OutboxEvent.objects.get(event_id=before[-1]).sequence
        assert gap.value.url.endswith(f"?after={last_shown}")
        assert [e["id"] for e in gap.value.json()["events"]] == missed
        expect(status).to_have_text("live")
        expect(rows).to_have_count(5)
        assert _feed_ids(page) == (before + missed)[::-1]  # each once, newest first

        after = _changes(team, admin, "after", 1)  # live again over the new socket
        expect(rows).to_have_count(6)
        assert _feed_ids(page) == (before + missed + after)[::-1]
    finally:
        if restarted is not None:
            restarted.__exit__(None, None, None)
        bridge.halt()
        relay.halt()
    assert relay.error is None and bridge.error is None


def test_pause_counts_each_event_once_across_a_reconnect_and_resume_shows_them(
    page, asgi_live_server, kafka_bootstrap, settings
):
    use_fresh_topic(settings, kafka_bootstrap)
    team, admin = _team()
    relay, bridge = start_relay(), start_bridge()
    restarted = None
    try:
        seed = _changes(team, admin, "seed", 1)
        _wait_bridged(bridge, 1)
        _sign_in(page, asgi_live_server, admin)
        page.goto(f"/t/{team.slug}/events/")
        status = page.get_by_test_id("events-status")
        expect(status).to_have_text("live")
        rows = page.get_by_test_id("event-row")
        expect(rows).to_have_count(1)

        pause, count = page.get_by_test_id("pause"), page.get_by_test_id("paused-count")
        pause.click()
        expect(pause).to_have_text("Resume")
        held = _changes(team, admin, "held", 2)
        expect(count).to_have_text("2 new while paused", timeout=20_000)

        _down(asgi_live_server)
        missed = _changes(team, admin, "missed", 2)
        _wait_bridged(bridge, 5)
        with page.expect_response(lambda r: "/events/history/" in r.url, timeout=30_000) as gap:
            restarted = SamePortServer(asgi_live_server.port).__enter__()
        # Asked from the last event held, not the last one shown: nothing comes twice.
        last_held = OutboxEvent.objects.get(event_id=held[-1]).sequence
        assert gap.value.url.endswith(f"?after={last_held}")
        assert [e["id"] for e in gap.value.json()["events"]] == missed
        expect(status).to_have_text("live")
        expect(count).to_have_text("4 new while paused")
        expect(rows).to_have_count(1)  # still paused: nothing new is shown yet

        pause.click()
        expect(pause).to_have_text("Pause")
        expect(rows).to_have_count(5)
        expect(count).to_have_text("4 arrived while paused")
        assert _feed_ids(page) == (seed + held + missed)[::-1]
    finally:
        if restarted is not None:
            restarted.__exit__(None, None, None)
        bridge.halt()
        relay.halt()
    assert relay.error is None and bridge.error is None
