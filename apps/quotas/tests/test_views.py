"""The quotas page."""

import pytest

from apps.inference.tests.factories import team_with_admin
from apps.quotas.models import Quota
from apps.quotas.tests.factories import make_quota
from apps.teams.models import Role
from apps.teams.tests.factories import member_of

pytestmark = pytest.mark.django_db


def test_admins_see_consumption_and_set_quotas(client):
    team, admin = team_with_admin()
    make_quota(team, admin, token_budget=5000, max_concurrent_runs=4)
    client.force_login(admin)
    page = client.get(f"/t/{team.slug}/quotas/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Token budget per month" in html and "Concurrent runs" in html
    assert "resets" in html.lower() and "5000" in html
    assert "Set a quota" not in html or Quota.objects.count() == 1

    bad = client.post(f"/t/{team.slug}/quotas/time-zone/", {"time_zone": "Mars/Base"})
    assert bad.status_code == 400 and "Unknown time zone" in bad.content.decode()
    good = client.post(f"/t/{team.slug}/quotas/time-zone/", {"time_zone": "Asia/Tokyo"})
    assert good.status_code == 302
    team.refresh_from_db()
    assert team.time_zone == "Asia/Tokyo"

    quota = Quota.objects.get(team=team)
    changed = client.post(
        f"/t/{team.slug}/quotas/{quota.pk}/",
        {"period": "day", "token_budget": "-5", "thresholds": "80"},
    )
    assert changed.status_code == 400
    changed = client.post(
        f"/t/{team.slug}/quotas/{quota.pk}/",
        {"period": "day", "token_budget": "7000", "cost_budget": "1.25", "thresholds": "50, 90"},
    )
    assert changed.status_code == 302
    quota.refresh_from_db()
    assert (quota.period, quota.token_budget, quota.thresholds) == ("day", 7000, [50, 90])
    assert quota.max_concurrent_runs is None  # the form sends every field

    increase = client.post(
        f"/t/{team.slug}/quotas/{quota.pk}/increases/",
        {"extra_tokens": "100", "ends_at": "2000-01-01T10:00"},
    )
    assert increase.status_code == 400 and "future" in increase.content.decode()


def test_members_read_only_and_outsiders_404(client):
    team, admin = team_with_admin()
    make_quota(team, admin, token_budget=5000)
    member = member_of(team, Role.MEMBER)
    client.force_login(member)
    page = client.get(f"/t/{team.slug}/quotas/")
    assert page.status_code == 200 and "Set a quota" not in page.content.decode()
    assert client.post(f"/t/{team.slug}/quotas/new/", {"token_budget": "1"}).status_code == 403
    other, _ = team_with_admin()
    assert client.get(f"/t/{other.slug}/quotas/").status_code == 404


def test_staff_set_quotas_in_the_admin_with_the_same_checks(client):
    from apps.accounts.tests.factories import UserFactory

    team, _admin = team_with_admin()
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    assert client.get("/admin/quotas/quota/").status_code == 200
    form = {
        "team": team.pk,
        "period": "month",
        "token_budget": "",
        "cost_budget": "1.1234567",
        "thresholds": "[80, 100]",
        "increases-TOTAL_FORMS": "0",
        "increases-INITIAL_FORMS": "0",
    }
    refused = client.post("/admin/quotas/quota/add/", form)
    assert refused.status_code == 200 and not Quota.objects.exists()
    added = client.post("/admin/quotas/quota/add/", {**form, "cost_budget": "12.5"})
    assert added.status_code == 302, added.content.decode()[:2000]
    quota = Quota.objects.get()
    assert quota.cost_budget == 12.5 and quota.thresholds == [80, 100]
    assert client.get(f"/admin/quotas/quota/{quota.pk}/change/").status_code == 200
    assert client.get("/admin/quotas/quotaalert/").status_code == 200
