"""The README's run command path: no PostgreSQL, Redis or Kafka, in a real browser.

The portal runs as a subprocess with none of the service URLs set (SQLite,
in-memory channel layer, in-process tasks), seeded by ``seed_demo``; the demo
user signs in and tests the local backend, whose answer streams in live.
"""

import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from playwright.sync_api import expect

from conftest import ROOT, free_port, wait_for_port

pytestmark = pytest.mark.browser
SERVICE_VARS = {
    "DATABASE_URL",
    "REDIS_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "CELERY_BROKER_URL",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}


@pytest.fixture
def embedded_portal(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(
        SQLITE_PATH=str(tmp_path / "portal.sqlite3"),
        SITE_URL=f"http://127.0.0.1:{port}",
        LOCAL_BACKEND_TOKENS_PER_SECOND="15",
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    seeded = subprocess.run(
        [*manage, "seed_demo"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "portal.asgi:application",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--ws",
            "websockets-sansio",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}", seeded.stdout, env
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def test_demo_login_and_a_live_local_run_without_any_service(browser, embedded_portal):
    url, seed_output, _env = embedded_portal
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


MAKE_KEY = """
from apps.keys.services import key_create
from apps.teams.models import Team
team = Team.objects.get(memberships__user__email="{email}")
print(key_create(team=team, actor=team.memberships.get().user, name="sdk", scopes=["chat"])[1])
"""


def test_the_gateway_answers_the_openai_sdk_without_any_service(embedded_portal):
    """In-process tasks and the in-memory layer carry a gateway call end to end."""
    import openai

    url, _seed, env = embedded_portal
    raw = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-v",
            "0",
            "-c",
            MAKE_KEY.format(email=settings.DEMO_EMAIL),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=raw, max_retries=0, timeout=30)
    hello = [{"role": "user", "content": "Hello"}]
    answer = client.chat.completions.create(model="helpdesk", messages=hello)
    assert answer.choices[0].message.content and answer.usage.total_tokens > 0
    chunks = list(client.chat.completions.create(model="helpdesk", messages=hello, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].choices[0].finish_reason == "stop"
