"""A newcomer in Chromium follows the team home's checklist to a first call through
the gateway; the assistants it made then link to their playground."""

import openai
import pytest
from playwright.sync_api import expect

from apps.dashboard.tests.helpers import sign_in
from apps.inference.tests.factories import local_backend
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _step(page, slug):
    return page.get_by_test_id(f"step-{slug}")


def test_follow_the_checklist_to_a_first_call(page, asgi_live_server):
    team = TeamFactory(name="Newcomers")
    owner = member_of(team, Role.OWNER)
    local_backend(team, owner)
    sign_in(page, asgi_live_server.url, owner)
    home = f"/t/{team.slug}/"
    page.goto(home)
    for slug in ("prompt", "assistant", "key", "call"):
        expect(_step(page, slug)).to_have_attribute("data-done", "false")
    expect(page.get_by_test_id("next-step")).to_have_text("Create a prompt")

    page.get_by_test_id("next-step").click()
    form = page.locator("#new-prompt form")
    form.get_by_label("Name").fill("Greeter")
    form.get_by_label("System template").fill("You greet people.")
    form.get_by_role("button", name="Create prompt").click()
    expect(page.get_by_test_id("prompt-name")).to_contain_text("Greeter")

    page.goto(home)
    expect(_step(page, "prompt")).to_have_attribute("data-done", "true")
    expect(page.get_by_test_id("next-step")).to_have_text("Create an assistant")
    page.get_by_test_id("next-step").click()
    expect(page.get_by_role("heading", name="New assistant")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Greeter bot")
    page.get_by_label("Model", exact=True).select_option("local-echo")
    page.get_by_role("button", name="Create assistant").click()
    expect(page.get_by_text("Assistant Greeter bot created.")).to_be_visible()

    page.goto(home)
    expect(_step(page, "assistant")).to_have_attribute("data-done", "true")
    expect(page.get_by_test_id("next-step")).to_have_text("Create an API key")
    page.get_by_test_id("next-step").click()
    form = page.locator("#create-key form")
    form.get_by_label("Name").fill("first-key")
    form.get_by_role("button", name="Create key").click()
    raw = page.get_by_test_id("new-key").input_value()

    page.goto(home)
    expect(_step(page, "key")).to_have_attribute("data-done", "true")
    expect(page.get_by_test_id("next-step")).to_have_text("Call it with the openai SDK")
    client = openai.OpenAI(base_url=f"{asgi_live_server.url}/v1", api_key=raw, max_retries=0)
    assert "greeter-bot" in [m.id for m in client.models.list()]

    page.goto(home)
    expect(page.get_by_test_id("getting-started")).to_have_count(0)
    page.get_by_test_id("dashboard-assistants").get_by_role("link", name="Greeter bot").click()
    expect(page).to_have_url(f"{asgi_live_server.url}/t/{team.slug}/assistants/greeter-bot/")


def test_a_viewer_sees_no_checklist(page, asgi_live_server):
    team = TeamFactory()
    viewer = member_of(team, Role.VIEWER)
    sign_in(page, asgi_live_server.url, viewer)
    page.goto(f"/t/{team.slug}/")
    expect(page.get_by_test_id("viewer-empty")).to_be_visible()
    expect(page.get_by_test_id("getting-started")).to_have_count(0)
    expect(page.get_by_role("link", name="Create a prompt")).to_have_count(0)
