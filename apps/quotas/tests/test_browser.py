"""The quotas page in a real browser: an admin sets a budget, runs consume it, the
page shows what is used and when it resets, a temporary increase lets one more run
through, and bad values are refused with nothing saved."""

import re
from datetime import UTC, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.accounts.tests.factories import PASSWORD
from apps.core.errors import RateLimited
from apps.inference.tests.factories import simulator_backend, team_with_admin
from apps.inference.tests.test_worker_runs import HELLO, create, wait_finished
from apps.quotas import enforcement
from apps.quotas.models import Quota, QuotaIncrease

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]
PARAMS = {"max_tokens": 8}


def sign_in(page, user):
    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))


def noon_zone() -> str:
    """A fixed-offset zone whose clock is near noon now (Etc/GMT signs are inverted)."""
    offset = 12 - timezone.now().astimezone(UTC).hour
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


def test_admin_sets_a_budget_and_watches_it_fill(page, celery_worker, simulator):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    one_run, _cost = enforcement.worst_case(
        team=team,
        backend_id=backend.pk,
        model="sim-small",
        messages=HELLO,
        parameters=PARAMS,
        fallbacks=[],
    )
    sign_in(page, admin)
    page.get_by_role("link", name="Quotas", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/t/{team.slug}/quotas/$"))
    expect(page.get_by_text("No quotas: nothing limits this team's spending yet.")).to_be_visible()

    # A zone where it is around noon, so the daily budget can't roll over mid-test.
    zone = page.locator("section", has=page.get_by_role("heading", name="Time zone"))
    zone.get_by_label("Time zone").fill("Mars/Olympus_Mons")
    zone.get_by_role("button", name="Save time zone").click()
    expect(zone.get_by_role("alert")).to_be_visible()
    zone.get_by_label("Time zone").fill(noon_zone())
    zone.get_by_role("button", name="Save time zone").click()
    expect(page.get_by_role("heading", name=f"Quotas periods follow {noon_zone()}")).to_be_visible()
    team.refresh_from_db()
    assert team.time_zone == noon_zone()

    new_quota = page.locator("section", has=page.get_by_role("heading", name="Set a quota"))
    new_quota.get_by_label("Period").select_option("day")
    new_quota.get_by_label("Token budget").fill("-5")
    new_quota.get_by_label("Thresholds").fill("50, 100")
    new_quota.get_by_role("button", name="Save quota").click()
    expect(new_quota.get_by_role("alert")).to_contain_text("greater than or equal to 0")
    assert not Quota.objects.exists()

    new_quota.get_by_label("Token budget").fill(str(2 * one_run))
    new_quota.get_by_role("button", name="Save quota").click()
    expect(page.get_by_text("Quota saved.")).to_be_visible()
    card = page.locator("section[data-quota]")
    expect(card.get_by_role("heading")).to_contain_text("The whole team per day")
    budget_row = card.locator("tr[data-limit=token_budget]")
    expect(budget_row.locator("td").nth(1)).to_have_text("0")
    expect(budget_row.locator("td").nth(3)).to_have_text(f"{2 * one_run} tokens")
    expect(budget_row.locator("td").nth(5)).to_contain_text(re.compile(r"^in \d+"))

    runs = [create(team, admin, backend, parameters=PARAMS) for _ in range(2)]
    used = sum(wait_finished(run.pk).total_tokens for run in runs)
    with pytest.raises(RateLimited):
        create(team, admin, backend, parameters=PARAMS)  # the budget is spoken for

    page.reload()
    expect(budget_row.locator("td").nth(1)).to_have_text(str(used))
    expect(budget_row.locator("td").nth(2)).to_have_text("\u2013")  # an en dash: nothing reserved
    expect(card.get_by_text("Alerts at 50%, 100% of a budget, once per period.")).to_be_visible()

    card.locator("summary", has_text="Change").click()
    card.get_by_label("Extra tokens", exact=True).fill(str(one_run))
    card.get_by_label("Until").fill("2099-01-01T00:00")
    card.get_by_label("Reason").fill("launch day")
    card.get_by_role("button", name="Add increase").click()
    expect(card.get_by_role("alert")).to_contain_text("at most 366 days")  # shown, not folded
    assert not QuotaIncrease.objects.exists()
    until = (timezone.now().astimezone(team.zone) + timedelta(days=3)).replace(second=0)
    card.get_by_label("Until").fill(until.strftime("%Y-%m-%dT%H:%M"))
    card.get_by_label("Reason").fill("launch day")
    card.get_by_role("button", name="Add increase").click()
    shown = until.strftime("%Y-%m-%d %H:%M")  # on the team's clock, as typed
    expect(card.locator("[data-increase]")).to_have_text(
        re.compile(rf"\+{one_run} tokens until {shown}")
    )
    assert wait_finished(create(team, admin, backend, parameters=PARAMS).pk).status == "succeeded"

    card.get_by_role("button", name="End now").click()
    expect(card.get_by_text("launch day")).to_have_count(0)
    assert not QuotaIncrease.objects.filter(ends_at__gt=timezone.now()).exists()
    with pytest.raises(RateLimited):
        create(team, admin, backend, parameters=PARAMS)
