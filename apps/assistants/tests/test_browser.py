"""The issue's end-to-end story in a real browser, with a real worker and the simulator:
prompt -> two versions -> production label -> assistant on the label -> streamed
chat -> label moved -> the next answer uses the other version."""

import re

import pytest
from playwright.sync_api import expect

from apps.accounts.tests.factories import PASSWORD
from apps.inference.models import ChatRun
from apps.inference.tests.factories import simulator_backend, team_with_admin

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def move_label(page, team, version: str):
    page.goto(f"/t/{team.slug}/prompts/greeter/")
    page.get_by_label("Label", exact=True).fill("production")
    page.get_by_label("Version", exact=True).select_option(version)
    page.get_by_role("button", name="Move label").click()
    expect(page.get_by_test_id("label-production")).to_contain_text(f"v{version}")


def chat(page, text: str):
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()
    answer = page.locator(".bubble.assistant").last
    expect(answer).to_have_attribute("data-status", "succeeded", timeout=20_000)
    return answer


def test_prompt_versions_label_assistant_and_playground(page, celery_worker, simulator):
    simulator.config.tokens_per_second = 25
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)

    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))

    page.goto(f"/t/{team.slug}/prompts/")
    page.get_by_label("Name", exact=True).fill("Greeter")
    page.get_by_label("System template").fill("You greet {{name}}. First take.")
    page.get_by_label("Commit message").fill("First take")
    page.get_by_role("button", name="Create prompt").click()
    expect(page).to_have_url(re.compile(r"/prompts/greeter/$"))
    # the boosted swap may land after the URL changes: wait for the detail page itself
    expect(page.get_by_test_id("version-row")).to_have_count(1)

    page.get_by_label("System template").fill("You greet {{name}} warmly. Second take.")
    page.get_by_label("Commit message").fill("Warmer")
    page.get_by_role("button", name="Save as new version").click()
    expect(page.get_by_test_id("version-row")).to_have_count(2)
    move_label(page, team, "1")

    page.goto(f"/t/{team.slug}/assistants/")
    page.get_by_label("Name", exact=True).fill("Greeter bot")
    page.get_by_label("Backend", exact=True).select_option(str(backend.pk))
    page.get_by_label("Model", exact=True).select_option("sim-small")
    page.get_by_label("Instructions from", exact=True).select_option("label")
    page.get_by_label("Prompt", exact=True).select_option("greeter")
    page.get_by_label("Prompt label", exact=True).fill("production")
    page.get_by_role("button", name="Create assistant").click()
    expect(page).to_have_url(re.compile(r"/assistants/greeter-bot/$"))

    page.wait_for_function("() => document.getElementById('playground').dataset.connected")
    page.locator("[data-var=name]").fill("Ada")
    first = chat(page, "Hello there")
    assert int(first.get_attribute("data-chunks")) > 1, "the answer came in several messages"
    expect(first.locator(".meta")).to_contain_text("prompt v1")
    run = ChatRun.objects.get()
    assert run.messages[0]["content"] == "You greet Ada. First take."
    expect(first.locator(".text")).to_have_text(run.output)

    move_label(page, team, "2")
    page.goto(f"/t/{team.slug}/assistants/greeter-bot/")
    page.wait_for_function("() => document.getElementById('playground').dataset.connected")
    page.locator("[data-var=name]").fill("Ada")
    second = chat(page, "Hello again")
    expect(second.locator(".meta")).to_contain_text("prompt v2")
    latest = ChatRun.objects.latest("created_at")
    assert latest.prompt_version.number == 2
    assert latest.messages[0]["content"] == "You greet Ada warmly. Second take."
