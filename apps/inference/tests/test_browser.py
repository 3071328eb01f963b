"""Test connection in a real browser: the page streams the worker's answer live."""

import re

import pytest
from playwright.sync_api import expect

from apps.accounts.tests.factories import PASSWORD
from apps.inference import textgen
from apps.inference.models import ChatRun
from apps.inference.tests.factories import simulator_backend, team_with_admin

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_test_connection_streams_the_answer_live(page, celery_worker, simulator):
    simulator.config.tokens_per_second = 20
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator, api_key="sk-browser-test-5555")

    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))

    page.goto(f"/t/{team.slug}/backends/{backend.pk}/")
    expect(page.get_by_text("…5555")).to_be_visible()
    assert "sk-browser-test-5555" not in page.content()
    page.get_by_label("Model", exact=True).select_option("sim-small")
    page.get_by_label("Prompt", exact=True).fill("Hello from the browser")
    page.get_by_role("button", name="Test connection").click()

    status = page.get_by_test_id("run-status")
    expect(status).to_have_text("running", timeout=15_000)
    output = page.get_by_test_id("run-output")
    expect(output).not_to_be_empty()
    partial = output.text_content()
    expect(status).to_have_text("succeeded", timeout=15_000)
    run = ChatRun.objects.get()
    expected = "".join(textgen.reply_pieces(run.messages, max_tokens=64))
    expect(output).to_have_text(expected)
    assert partial and len(partial) < len(expected), "the answer arrived in parts"
    expect(page.get_by_test_id("run-tokens")).to_contain_text(
        f"{run.prompt_tokens} in + {run.completion_tokens} out"
    )
