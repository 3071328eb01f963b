"""The usage page in a real browser after real runs: charts drawn, totals equal the API's."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from apps.accounts.tests.factories import PASSWORD
from apps.inference.tests.factories import simulator_backend, team_with_admin
from apps.inference.tests.test_worker_runs import create, wait_finished
from apps.usage.tests.factories import price

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHART_SUM = """(id) => {
  const chart = Chart.getChart(document.getElementById(id));
  return chart.data.datasets.map((d) => d.data.reduce((a, b) => a + (b || 0), 0));
}"""


def test_usage_page_draws_charts_that_match_the_api(page, celery_worker, simulator):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    price("sim-small", inp="2.5", out="10")
    simulator.inject("no_usage")
    runs = [create(team, admin, backend, parameters={"max_tokens": 4 + i}) for i in range(3)]
    runs.append(create(team, admin, backend, model="sim-large"))  # unpriced
    for run in runs:
        assert wait_finished(run.pk).status == "succeeded"

    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))

    page.get_by_role("link", name="Usage", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/t/{team.slug}/usage/$"))
    for chart in ("requests", "tokens", "cost", "latency"):
        expect(page.get_by_test_id(f"chart-{chart}")).to_have_attribute("data-drawn", "true")

    api = page.request.get(f"/api/v1/teams/{team.slug}/usage").json()
    totals = api["totals"]
    assert totals["requests"] == 4 and totals["estimated_requests"] == 1
    expect(page.get_by_test_id("usage-requests")).to_have_text(str(totals["requests"]))
    expect(page.get_by_test_id("usage-tokens")).to_have_text(str(totals["total_tokens"]))
    expect(page.get_by_test_id("usage-errors")).to_have_text(str(totals["errors"]))
    expect(page.get_by_test_id("usage-cost")).to_have_text(f"${totals['cost']}")
    expect(page.get_by_test_id("usage-p50")).to_have_text(str(totals["latency_p50_ms"]))
    expect(page.get_by_test_id("usage-unpriced")).to_contain_text("sim-large")
    expect(page.get_by_test_id("usage-estimated")).to_be_visible()

    requests, errors = page.evaluate(CHART_SUM, "chart-requests")
    assert (requests, errors) == (totals["requests"], totals["errors"])
    prompt, completion = page.evaluate(CHART_SUM, "chart-tokens")
    assert (prompt, completion) == (totals["prompt_tokens"], totals["completion_tokens"])
    (cost,) = page.evaluate(CHART_SUM, "chart-cost")
    assert Decimal(str(cost)).quantize(Decimal("1e-9")) == Decimal(totals["cost"]).quantize(
        Decimal("1e-9")
    )

    page.get_by_label("Range").select_option("today")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"range=today"))
    expect(page.get_by_test_id("chart-requests")).to_have_attribute("data-drawn", "true")
    hours = page.evaluate(
        "() => Chart.getChart(document.getElementById('chart-requests')).data.labels.length"
    )
    assert hours in (23, 24, 25)
    expect(page.get_by_test_id("usage-requests")).to_have_text("4")
