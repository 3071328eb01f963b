"""The events page in Chromium stays open while another session creates an
assistant and chats; the events appear without a reload, and so do the tiles."""

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import expect

from apps.assistants import services as assistant_services
from apps.events.tests.helpers import session_cookie, start_bridge, start_relay, use_fresh_topic
from apps.inference import executor
from apps.inference import services as inference_services
from apps.inference.tests.factories import simulator_backend
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.django_db(transaction=True)]


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


def test_events_appear_live_while_someone_else_works(
    page, asgi_live_server, kafka_bootstrap, settings, simulator
):
    use_fresh_topic(settings, kafka_bootstrap)
    team = TeamFactory()
    watcher = member_of(team, Role.VIEWER)
    colleague = member_of(team, Role.ADMIN)
    backend = simulator_backend(team, colleague, simulator)
    relay, bridge = start_relay(), start_bridge()
    try:
        _sign_in(page, asgi_live_server, watcher)
        page.goto(f"/t/{team.slug}/events/")
        expect(page.get_by_test_id("events-status")).to_have_text("live")
        expect(page.get_by_test_id("event-row")).to_have_count(1)  # backend.created, history

        assistant = assistant_services.assistant_create(
            team=team, actor=colleague, name="Concierge", backend=backend.pk, model="sim-small"
        )
        feed = page.get_by_test_id("events-feed")
        expect(feed.get_by_text("Assistant Concierge created")).to_be_visible(timeout=20_000)

        page.get_by_test_id("pause").click()
        run = inference_services.run_create(
            team=team,
            actor=colleague,
            backend_id=backend.pk,
            model="sim-small",
            messages=[{"role": "user", "content": "Hi"}],
            assistant=assistant,
        )
        assert executor.execute(run.pk) == "succeeded"
        expect(page.get_by_test_id("paused-count")).to_have_text(
            "3 new while paused", timeout=20_000
        )
        page.get_by_test_id("pause").click()  # resume
        for kind in ("run.queued", "run.started", "run.succeeded"):
            expect(feed.locator(f'[data-type="{kind}"]')).to_have_count(1)
        first = page.get_by_test_id("event-row").first
        expect(first).to_have_attribute("data-type", "run.succeeded")  # newest first
        first.locator("summary").click()
        expect(first.locator(".event-json")).to_contain_text('"total_tokens"')

        page.get_by_test_id("filter-type").select_option("assistant.created")
        expect(feed.locator(".event-row:visible")).to_have_count(1)

        page.goto(f"/t/{team.slug}/")
        expect(page.get_by_test_id("today-requests")).to_have_text("1")
        second = inference_services.run_create(
            team=team,
            actor=colleague,
            backend_id=backend.pk,
            model="sim-small",
            messages=[{"role": "user", "content": "Again"}],
        )
        page.wait_for_timeout(3000)  # the dashboard's socket joins the group
        assert executor.execute(second.pk) == "succeeded"
        expect(page.get_by_test_id("today-requests")).to_have_text("2", timeout=20_000)
    finally:
        bridge.halt()
        relay.halt()
