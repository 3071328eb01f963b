"""The run page shows the run's cost beside its tokens, live when the run ends and when
read back: the ledger's sum for its attempts, or "unpriced" for a model without a price."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from apps.accounts.tests.factories import PASSWORD
from apps.inference.models import ChatRun
from apps.inference.tests.factories import simulator_backend, team_with_admin
from apps.usage.models import UsageRecord
from apps.usage.tests.factories import price

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def ledger_cost(run) -> str:
    total = sum((r.cost for r in UsageRecord.objects.filter(run=run)), Decimal(0))
    return f"${format(total.normalize(), 'f')}"


def run_from_backend_page(page, backend, model: str, *, live: bool):
    """Test connection, then wait on the run page until the run ends (``live``: the page
    saw it running, so the end arrived over the socket)."""
    page.goto(f"/t/{backend.team.slug}/backends/{backend.pk}/")
    page.get_by_label("Model", exact=True).select_option(model)
    page.get_by_label("Prompt", exact=True).fill("Hello from the browser")
    page.get_by_role("button", name="Test connection").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    if live:
        expect(page.get_by_test_id("run-status")).to_have_text("running", timeout=15_000)
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=20_000)
    return ChatRun.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))


def test_the_run_page_shows_the_ledger_cost_live_and_read_back(page, celery_worker, simulator):
    simulator.config.tokens_per_second = 10  # the page is open before the run ends
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    price(model="sim-small", inp="1.5", out="4")

    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))

    run = run_from_backend_page(page, backend, "sim-small", live=True)
    cost = page.get_by_test_id("run-cost")
    expect(cost).to_have_text(ledger_cost(run))
    assert ledger_cost(run) not in ("$0", "—")
    expect(page.get_by_test_id("run-tokens")).to_contain_text(f"{run.prompt_tokens} in")
    page.reload()
    expect(cost).to_have_text(ledger_cost(run))

    unpriced = run_from_backend_page(page, backend, "sim-large", live=False)
    expect(cost).to_have_text("unpriced")
    assert UsageRecord.objects.get(run=unpriced).unpriced
    page.reload()
    expect(cost).to_have_text("unpriced")
