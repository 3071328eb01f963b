"""The events page in Chromium: a key's calls under the key's name, live and in the
history, and the date on rows from before today."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.dashboard.tests.helpers import sign_in
from apps.events.models import OutboxEvent
from apps.inference import services as inference_services
from apps.inference.tests.factories import local_backend
from apps.keys.actor import KeyActor
from apps.keys.tests.factories import make_key
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_rows_name_the_key_and_date_the_past(page, asgi_live_server, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = []  # the embedded default's direct hand-off
    team = TeamFactory(time_zone="Europe/Paris")
    admin = member_of(team, Role.ADMIN)
    backend = local_backend(team, admin)
    key, _ = make_key(team, admin, name="ci-bot")
    old = OutboxEvent.objects.get(team=team, type="key.created")
    old_time = timezone.now() - timedelta(days=2)
    OutboxEvent.objects.filter(pk=old.pk).update(time=old_time)

    page.add_init_script(
        "document.addEventListener('DOMContentLoaded', () => {"
        " const s = document.getElementById('events-status');"
        " if (s) new MutationObserver(() => { if (s.dataset.state === 'live') window.live = true; })"
        ".observe(s, {attributes: true}); });"
    )
    sign_in(page, asgi_live_server.url, admin)
    page.goto(f"/t/{team.slug}/events/")
    page.wait_for_function("() => window.live === true")
    dated = page.locator('[data-type="key.created"] time')
    paris = old_time.astimezone(team.zone)
    expect(dated).to_have_text(paris.strftime("%Y-%m-%d %H:%M:%S"))
    expect(dated).to_have_attribute("title", paris.strftime("%Y-%m-%d %H:%M:%S Europe/Paris"))
    expect(page.locator('[data-type="backend.created"] time')).to_have_text(
        OutboxEvent.objects.get(team=team, type="backend.created")
        .time.astimezone(team.zone)
        .strftime("%H:%M:%S")
    )

    # a program calls with the key while the page is open: the row arrives live
    inference_services.run_create(
        team=team,
        actor=KeyActor(key),
        backend_id=backend.pk,
        model="local-echo",
        messages=[{"role": "user", "content": "Hi"}],
    )
    actor = page.locator('[data-type="run.queued"] [data-testid="event-actor"]')
    expect(actor).to_have_text(f"ci-bot {key.prefix}…")
    expect(actor).to_have_attribute("title", f"API key {key.prefix}…")
    page.reload()
    expect(actor).to_have_text(f"ci-bot {key.prefix}…")
