"""The README's run command path: no PostgreSQL, Redis or Kafka, in a real browser.

The portal runs as a subprocess with none of the service URLs set (SQLite,
in-memory channel layer, in-process tasks), seeded by ``seed_demo``; the demo
user signs in and tests the local backend, whose answer streams in live.
"""

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_demo_login_and_a_live_local_run_without_any_service(browser, embedded_portal):
    url, seed_output = embedded_portal.url, embedded_portal.seed_output
    assert f"Demo login: {settings.DEMO_EMAIL} / {settings.DEMO_PASSWORD}" in seed_output
    page = browser.new_page(base_url=url)
    page.set_default_timeout(15_000)
    page.goto("/readyz")
    assert '"redis": "skipped"' in page.content() and '"kafka": "skipped"' in page.content()

    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(settings.DEMO_EMAIL)
    page.get_by_label("Password").fill(settings.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("dashboard-title")).to_have_text("Demo team")

    page.get_by_role("link", name="Backends").click()
    page.get_by_role("link", name="Local (development)").click()
    expect(page.get_by_text("development backend").first).to_be_visible()
    page.get_by_role("button", name="Test connection").click()

    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    output = page.get_by_test_id("run-output")
    expect(page.get_by_test_id("run-status")).to_have_text("running")
    expect(output).not_to_be_empty()
    partial = output.text_content()
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded")
    final = output.text_content()
    assert partial and final.startswith(partial) and len(final) > len(partial)
    expect(page.get_by_test_id("run-tokens")).to_contain_text(" out")
    page.close()


def test_the_gateway_answers_the_openai_sdk_without_any_service(embedded_portal):
    """In-process tasks and the in-memory layer carry a gateway call end to end."""
    import openai

    url, raw = embedded_portal.url, embedded_portal.api_key("chat")
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=raw, max_retries=0, timeout=30)
    hello = [{"role": "user", "content": "Hello"}]
    answer = client.chat.completions.create(model="helpdesk", messages=hello)
    assert answer.choices[0].message.content and answer.usage.total_tokens > 0
    chunks = list(client.chat.completions.create(model="helpdesk", messages=hello, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].choices[0].finish_reason == "stop"
