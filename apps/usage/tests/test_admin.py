"""Staff set global prices in the admin; a saved price is never edited in place."""

from decimal import Decimal

import pytest
from django.urls import reverse

from apps.accounts.tests.factories import UserFactory
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.usage.models import Price
from apps.usage.tests.factories import finish_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def add(client, **fields):
    body = {"model": "new-model", "input_per_million": "1", "output_per_million": "2",
            "effective_from_0": "2026-01-01", "effective_from_1": "00:00:00", **fields}  # fmt: skip
    return client.post(reverse("admin:usage_price_add"), body)


def test_staff_add_a_global_price_and_cannot_rewrite_it(staff):
    assert add(staff).status_code == 302
    saved = Price.objects.get(model="new-model")
    assert saved.team is None and saved.input_per_million == Decimal(1)
    staff.post(
        reverse("admin:usage_price_change", args=[saved.pk]),
        {"input_per_million": "99", "note": "changed"},
    )
    saved.refresh_from_db()
    assert saved.input_per_million == Decimal(1), "amounts are read-only once saved"


def test_the_admin_refuses_seven_decimals_and_a_foreign_backend(staff):
    refused = add(staff, input_per_million="0.1234567")
    assert refused.status_code == 200 and "6 decimal places" in refused.content.decode()
    team, _admin = team_with_admin()
    other, other_admin = team_with_admin()
    foreign = local_backend(other, other_admin)
    refused = add(staff, team=team.pk, backend=foreign.pk)
    assert refused.status_code == 200 and "another team" in refused.content.decode()
    assert not Price.objects.filter(model="new-model").exists()


def test_ledger_and_rollup_pages_open(staff):
    team, admin = team_with_admin()
    finish_run(team, admin, local_backend(team, admin))
    for name in ("usagerecord", "dailyrollup", "price"):
        assert staff.get(reverse(f"admin:usage_{name}_changelist")).status_code == 200, name
    assert staff.get(reverse("admin:usage_usagerecord_add")).status_code == 403
