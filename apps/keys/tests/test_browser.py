"""A new key in Chromium: the copy button, and the snippet pasted as it is against the
live server (a real worker calling the project's simulator through the openai SDK)."""

import json
import shutil
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from apps.assistants.tests.factories import AssistantFactory
from apps.dashboard.tests.helpers import sign_in
from apps.inference.models import ChatRun
from apps.inference.tests.factories import simulator_backend
from apps.keys.models import ApiKey
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def clipboard_page(browser, asgi_live_server):
    context = browser.new_context(
        base_url=asgi_live_server.url, permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _create_key(page, team, name="ci-bot"):
    page.goto(f"/t/{team.slug}/keys/")
    form = page.locator("#create-key form")
    form.get_by_label("Name").fill(name)
    form.get_by_role("button", name="Create key").click()
    expect(page.get_by_test_id("new-key")).to_be_visible()
    return page.get_by_test_id("new-key").input_value()


def test_copy_the_key_and_run_the_pasted_snippet(
    clipboard_page, asgi_live_server, celery_worker, simulator
):
    page = clipboard_page
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    backend = simulator_backend(team, owner, simulator)
    AssistantFactory(team=team, backend=backend, model="sim-small", slug="helper", name="Helper")
    sign_in(page, asgi_live_server.url, owner)
    raw = _create_key(page, team)
    key = ApiKey.objects.get(team=team)
    assert raw.startswith(key.prefix)

    page.get_by_test_id("copy-key").click()
    expect(page.get_by_test_id("copy-key-status")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == raw

    python = page.get_by_test_id("snippet-python").inner_text()
    assert f'base_url="{asgi_live_server.url}/v1"' in python and f'api_key="{raw}"' in python
    page.get_by_test_id("copy-python").click()
    expect(page.locator("#copy-python-status")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == python

    # pasted into a Python with the openai SDK: it streams the assistant's answer
    done = subprocess.run(
        [sys.executable, "-c", python], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    run = ChatRun.objects.get(api_key=key)
    assert run.status == "succeeded" and run.assistant.slug == "helper"
    assert done.stdout == run.output + "\n"

    if shutil.which("curl"):  # and the curl line, through a shell
        curl = page.get_by_test_id("snippet-curl").inner_text()
        out = subprocess.run(
            ["bash", "-c", curl], capture_output=True, text=True, timeout=60, check=False
        )
        assert out.returncode == 0, out.stderr
        lines = [line for line in out.stdout.splitlines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        first = json.loads(lines[0].removeprefix("data: "))
        assert first["object"] == "chat.completion.chunk" and first["model"] == "helper"
        assert ChatRun.objects.filter(api_key=key).count() == 2


def test_without_the_clipboard_api_the_key_is_selected(page, asgi_live_server):
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    page.add_init_script("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    sign_in(page, asgi_live_server.url, owner)
    raw = _create_key(page, team)
    page.get_by_test_id("copy-key").click()
    expect(page.get_by_test_id("copy-key-status")).to_have_text(
        # execCommand("copy") works in Chromium; where it doesn't, the page says to press the keys
        __import__("re").compile("Copied|Selected: press Ctrl\\+C")
    )
    selected = page.evaluate(
        "() => { const el = document.activeElement;"
        " return el.value.slice(el.selectionStart, el.selectionEnd); }"
    )
    assert selected == raw


def test_the_secret_stays_on_its_page(page, asgi_live_server):
    """Not in htmx's history cache, not on the page the back button shows."""
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    sign_in(page, asgi_live_server.url, owner)
    raw = _create_key(page, team)
    secret = raw.rsplit("_", 1)[1]
    page.get_by_role("link", name="Back to API keys").click()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    stored = page.evaluate("() => JSON.stringify(Object.assign({}, sessionStorage, localStorage))")
    assert secret not in stored
    page.go_back()
    page.wait_for_load_state("load")
    assert secret not in page.content()
