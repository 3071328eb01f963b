"""The usage and prices pages, through Django's test client."""

import importlib.machinery
import json
import sys
import types
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.inference.tests.factories import compatible_backend, team_with_admin
from apps.teams.models import Role
from apps.teams.tests.factories import member_of
from apps.usage.models import Price
from apps.usage.tests.factories import attempt, finish_run, price

pytestmark = pytest.mark.django_db


@pytest.fixture
def team_usage():
    team, admin = team_with_admin()
    backend = compatible_backend(team, admin)
    price("sim-small", inp="2", out="4")
    finish_run(team, admin, backend, attempts=[attempt(1000, 500, latency_ms=300)])
    finish_run(team, admin, backend, model="odd-model", attempts=[attempt(10, 10)])
    return team, admin, backend


def test_the_page_shows_the_apis_numbers(client, team_usage):
    team, _admin, _backend = team_usage
    viewer = member_of(team, Role.VIEWER)
    client.force_login(viewer)
    page = client.get(reverse("usage:dashboard", args=[team.slug]))
    assert page.status_code == 200
    html = page.content.decode()
    api = client.get(f"/api/v1/teams/{team.slug}/usage").json()
    assert f'data-testid="usage-requests">{api["totals"]["requests"]}<' in html
    assert f'data-testid="usage-cost">${api["totals"]["cost"]}<' in html
    assert api["totals"]["cost"] == "0.004"
    assert "odd-model" in html and "not free" in html
    chart = json.loads(
        html.split('id="usage-chart-data" type="application/json">')[1].split("<")[0]
    )
    assert sum(chart["requests"]) == 2 and len(chart["labels"]) == 7
    assert 'data-testid="usage-quotas"' not in html or "Budgets" in html


def test_the_nav_links_to_the_usage_page(client, team_usage):
    team, admin, _backend = team_usage
    client.force_login(admin)
    html = client.get(reverse("dashboard:team_home", args=[team.slug])).content.decode()
    assert f'href="/t/{team.slug}/usage/"' in html


def test_bad_filters_show_an_error_not_a_500(client, team_usage):
    team, admin, _backend = team_usage
    client.force_login(admin)
    url = reverse("usage:dashboard", args=[team.slug])
    too_long = client.get(url, {"range": "custom", "start": "2020-01-01", "end": "2026-01-01"})
    assert too_long.status_code == 200
    assert "at most 366 days" in too_long.content.decode()
    bad = client.get(url, {"range": "custom", "start": "not-a-date", "assistant": "ghost"})
    assert bad.status_code == 200 and 'data-testid="usage-error"' in bad.content.decode()


def test_outsiders_get_404(client, team_usage):
    team, _admin, _backend = team_usage
    _other, stranger = team_with_admin()
    client.force_login(stranger)
    assert client.get(reverse("usage:dashboard", args=[team.slug])).status_code == 404
    assert client.get(reverse("usage:prices", args=[team.slug])).status_code == 404


def test_budgets_show_when_quotas_offer_a_status(client, team_usage, monkeypatch):
    team, admin, _backend = team_usage
    fake = types.ModuleType("apps.quotas.selectors")
    fake.__spec__ = importlib.machinery.ModuleSpec("apps.quotas.selectors", None)
    resets = timezone.now() + timedelta(hours=5, minutes=1)
    fake.quota_status_for = lambda t: [
        {
            "label": "Monthly budget",
            "key_name": None,
            "consumed": Decimal("12.50"),
            "reserved": Decimal("0.25"),
            "limit": Decimal(100),
            "unit": "USD",
            "percent": 12,
            "resets_at": resets,
        }
    ]
    monkeypatch.setitem(sys.modules, "apps.quotas.selectors", fake)
    monkeypatch.setattr("apps.usage.views._quota_template", lambda: "usage/_quota_status.html")
    client.force_login(admin)
    html = client.get(reverse("usage:dashboard", args=[team.slug])).content.decode()
    assert 'data-testid="usage-quotas"' in html
    assert "Monthly budget" in html and "12.50 + 0.25 held of 100 USD (12%)" in html
    assert "5\xa0hours" in html


def test_an_admin_sets_a_price_on_the_page(client, team_usage):
    team, admin, backend = team_usage
    client.force_login(admin)
    url = reverse("usage:price_create", args=[team.slug])
    body = {"backend": backend.pk, "model": "odd-model", "output_per_million": "1"}
    refused = client.post(url, {**body, "input_per_million": "0.1234567"})
    assert refused.status_code == 400
    assert "6 decimal places" in refused.content.decode()
    assert not Price.objects.filter(team=team).exists()
    saved = client.post(url, {**body, "input_per_million": "0.5"})
    assert saved.status_code == 302
    assert Price.objects.get(team=team).input_per_million == Decimal("0.5")
    listing = client.get(reverse("usage:prices", args=[team.slug])).content.decode()
    assert "odd-model" in listing and "this team" in listing


def test_members_see_prices_but_may_not_set_them(client, team_usage):
    team, _admin, backend = team_usage
    client.force_login(member_of(team, Role.MEMBER))
    page = client.get(reverse("usage:prices", args=[team.slug]))
    assert page.status_code == 200 and "Save price" not in page.content.decode()
    assert "gpt-4o-mini" in page.content.decode()
    refused = client.post(
        reverse("usage:price_create", args=[team.slug]),
        {"backend": backend.pk, "model": "m", "input_per_million": "1", "output_per_million": "1"},
    )
    assert refused.status_code == 403
