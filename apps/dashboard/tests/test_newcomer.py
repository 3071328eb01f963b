"""A newcomer's first ten minutes, on the embedded default exactly as ``make run``
starts it (SQLite, tasks in the web process, no PostgreSQL, Redis or Kafka): sign
in, a prompt with two versions, a price, an assistant, a playground answer with
its cost, two versions compared side by side, a key, and that key used by the
official ``openai`` SDK for the assistant, for ``local-echo`` and for a model that
doesn't exist."""

import re
import sqlite3

import openai
import pytest
from django.conf import settings
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def sign_in(page):
    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(settings.DEMO_EMAIL)
    page.get_by_label("Password").fill(settings.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("dashboard-title")).to_have_text("Demo team")


def make_prompt_with_two_versions(page, team: str):
    page.goto(f"/t/{team}/prompts/")
    page.get_by_label("Name", exact=True).fill("Greeter")
    page.get_by_label("System template").fill("You greet {{name}}. First take.")
    page.get_by_label("Commit message").fill("First take")
    page.get_by_role("button", name="Create prompt").click()
    expect(page.get_by_test_id("version-row")).to_have_count(1)
    page.get_by_label("System template").fill("You greet {{name}} warmly. Second take.")
    page.get_by_label("Commit message").fill("Warmer")
    page.get_by_role("button", name="Save as new version").click()
    expect(page.get_by_test_id("version-row")).to_have_count(2)
    page.get_by_label("Label", exact=True).fill("production")
    page.get_by_label("Version", exact=True).select_option("1")
    page.get_by_role("button", name="Move label").click()
    expect(page.get_by_test_id("label-production")).to_contain_text("v1")


def price_the_local_model(page, team: str):
    """The local backend is free unless its own price is set: set one, so the
    playground has a cost to show."""
    page.goto(f"/t/{team}/usage/prices/")
    page.get_by_label("Backend", exact=True).select_option(index=1)  # the team's only one
    page.get_by_label("Model", exact=True).fill("local-echo")
    page.get_by_label("Input per 1M tokens (USD)", exact=True).fill("1000")
    page.get_by_label("Output per 1M tokens (USD)", exact=True).fill("2000")
    page.get_by_role("button", name="Save price").click()
    expect(page.get_by_test_id("price-table")).to_contain_text("local-echo")


def make_assistant(page, team: str):
    page.goto(f"/t/{team}/assistants/")
    page.get_by_label("Name", exact=True).fill("Greeter bot")
    page.get_by_label("Backend", exact=True).select_option(label="Local (development)")
    page.get_by_label("Model", exact=True).select_option("local-echo")
    page.get_by_label("Instructions from", exact=True).select_option("label")
    page.get_by_label("Prompt", exact=True).select_option("greeter")
    page.get_by_label("Prompt label", exact=True).fill("production")
    page.get_by_role("button", name="Create assistant").click()
    expect(page).to_have_url(re.compile(r"/assistants/greeter-bot/$"))
    page.wait_for_function("() => document.getElementById('playground').dataset.connected")


def cost_shown(bubble) -> str:
    cost = bubble.get_by_test_id("run-cost")
    expect(cost).to_have_text(re.compile(r"^\$\d"))
    return cost.text_content()


def test_the_newcomers_path_on_the_embedded_default(browser, embedded_portal):
    portal, team = embedded_portal, embedded_portal.team_slug
    expect.set_options(timeout=20_000)
    context = browser.new_context(base_url=portal.url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    sign_in(page)
    make_prompt_with_two_versions(page, team)
    price_the_local_model(page, team)
    make_assistant(page, team)

    page.locator("#send-form [data-var=name]").fill("Ada")
    page.get_by_label("Message", exact=True).fill("Hello portal")
    page.get_by_role("button", name="Send").click()
    answer = page.locator(".bubble.assistant").last
    expect(answer).to_have_attribute("data-status", "succeeded")
    expect(answer).to_contain_text("You said: Hello portal")
    assert cost_shown(answer) != "$0"

    compare = page.locator("#compare-form")
    compare.locator("#compare-a").select_option("1")
    compare.locator("#compare-b").select_option("2")
    # the variables filled above apply to the compared versions too
    compare.locator("#compare-message").fill("Compare me")
    compare.get_by_role("button", name="Compare").click()
    for version in ("v1", "v2"):
        column = page.get_by_test_id(f"compare-{version}").locator(".bubble.assistant")
        expect(column).to_have_attribute("data-status", "succeeded")
        expect(column).to_contain_text("You said: Compare me")
        cost_shown(column)

    page.goto(f"/t/{team}/keys/")
    create = page.locator("#create-key form")
    create.get_by_label("Name", exact=True).fill("my laptop")
    create.get_by_role("button", name="Create key").click()
    raw = page.get_by_test_id("new-key").input_value()
    assert raw.startswith("aip_")
    context.close()

    client = openai.OpenAI(base_url=f"{portal.url}/v1", api_key=raw, timeout=30)
    hello = [{"role": "user", "content": "Hi from the SDK"}]
    bot = client.chat.completions.create(
        model="greeter-bot", messages=hello, extra_body={"variables": {"name": "Cy"}}
    )
    assert bot.choices[0].message.content == "You said: Hi from the SDK"
    raw_model = client.chat.completions.create(model="local-echo", messages=hello, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in raw_model if c.choices)
    assert text == "You said: Hi from the SDK"
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-4o", messages=hello)
    assert unknown.value.code == "model_not_found"

    with sqlite3.connect(portal.env["SQLITE_PATH"]) as db:
        statuses = dict(
            db.execute("SELECT status, COUNT(*) FROM inference_chatrun GROUP BY status")
        )
    assert statuses == {"succeeded": 5}  # answer, two compared, assistant, raw model
    assert "Traceback" not in portal.log and "database is locked" not in portal.log
