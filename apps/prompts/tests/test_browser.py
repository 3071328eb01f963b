"""The prompt library in a real browser: create, edit into a new version, label, diff, render."""

import re

import pytest
from playwright.sync_api import expect

from apps.accounts.tests.factories import PASSWORD
from apps.prompts.models import LabelMove, Prompt
from apps.prompts.tests.factories import team_with_editor

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_member_builds_versions_moves_a_label_and_reads_the_diff(page):
    team, editor = team_with_editor()

    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(editor.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))

    page.goto(f"/t/{team.slug}/prompts/")
    page.get_by_label("Name").fill("Support reply")
    page.get_by_label("Description").fill("Answers tickets")
    page.get_by_label("System template").fill("You help customers of {{ company }}.\nBe brief.")
    page.get_by_label("Commit message").fill("First draft")
    page.get_by_role("button", name="Create prompt").click()
    expect(page).to_have_url(re.compile(rf"/t/{team.slug}/prompts/support-reply/$"))
    expect(page.get_by_test_id("version-row")).to_have_count(1)

    page.get_by_label("System template").fill("You help customers of {{ company }}.\nBe thorough.")
    page.get_by_label("Parameters (JSON)").fill('{"temperature": 0.4}')
    page.get_by_label("Commit message").fill("More detail")
    page.get_by_role("button", name="Save as new version").click()
    expect(page.get_by_test_id("version-row")).to_have_count(2)
    expect(page.get_by_test_id("version-row").first).to_contain_text("More detail")

    page.get_by_label("Label", exact=True).fill("production")
    page.get_by_label("Version", exact=True).select_option("2")
    page.get_by_role("button", name="Move label").click()
    expect(page.get_by_test_id("label-production")).to_contain_text("v2")
    expect(page.get_by_test_id("label-history-row")).to_have_count(1)

    page.get_by_label("company").fill("Acme")
    page.get_by_role("button", name="Render").click()
    expect(page.get_by_test_id("render-result")).to_contain_text("You help customers of Acme.")

    page.get_by_role("link", name="diff").first.click()
    expect(page.locator(".diff-del")).to_contain_text(["-Be brief."])
    expect(page.locator(".diff-add").filter(has_text="Be thorough")).to_have_count(1)

    prompt = Prompt.objects.get()
    assert prompt.versions.count() == 2
    assert LabelMove.objects.get().moved_by == editor
