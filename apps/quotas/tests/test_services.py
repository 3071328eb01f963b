"""The service's checks, which the page, the API and the admin share."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from apps.core.errors import Conflict, ServiceError
from apps.inference.tests.factories import team_with_admin
from apps.keys.tests.factories import make_key
from apps.quotas import periods, services
from apps.teams.models import Role
from apps.teams.tests.factories import member_of

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"token_budget": -1}, "token_budget"),
        ({"token_budget": 10**13}, "token_budget"),
        ({"token_budget": True}, "token_budget"),
        ({"token_budget": 1.5}, "token_budget"),
        ({"cost_budget": "-1"}, "cost_budget"),
        ({"cost_budget": "0.0000001"}, "cost_budget"),
        ({"cost_budget": "abc"}, "cost_budget"),
        ({"cost_budget": "Infinity"}, "cost_budget"),
        ({"cost_budget": 10**10}, "cost_budget"),
        ({"tokens_per_minute": -5}, "tokens_per_minute"),
        ({"max_concurrent_runs": 10**6}, "max_concurrent_runs"),
        ({"thresholds": [80, 80, 90, 95, 99, 100, 50]}, "thresholds"),
        ({"thresholds": "80"}, "thresholds"),
        ({"period": "year"}, "period"),
    ],
)
def test_bad_values_name_the_field(fields, param):
    team, admin = team_with_admin()
    with pytest.raises(ServiceError) as error:
        services.quota_create(team=team, actor=admin, **fields)
    assert error.value.param == param and error.value.status == 400


def test_good_values_are_normalised():
    team, admin = team_with_admin()
    quota = services.quota_create(
        team=team, actor=admin, cost_budget=0.1, thresholds=[100, 80, 80], token_budget=0
    )
    assert quota.cost_budget == Decimal("0.100000") and quota.thresholds == [80, 100]
    assert quota.token_budget == 0  # zero is a real limit: nothing may be spent
    with pytest.raises(Conflict):
        services.quota_create(team=team, actor=admin)


def test_only_admins_and_only_their_teams_keys():
    team, admin = team_with_admin()
    other, other_admin = team_with_admin()
    with pytest.raises(PermissionDenied):
        services.quota_create(team=team, actor=member_of(team, Role.MEMBER), token_budget=1)
    foreign, _raw = make_key(other, other_admin)
    with pytest.raises(ServiceError) as error:
        services.quota_create(team=team, actor=admin, api_key=foreign)
    assert error.value.status == 404


@pytest.mark.parametrize("zone", ["Nowhere/Special", "", None, 42, "Europe/Paris "])
def test_time_zones(zone):
    team, admin = team_with_admin()
    if zone == "Europe/Paris ":
        assert services.time_zone_set(team=team, actor=admin, time_zone=zone).time_zone == (
            "Europe/Paris"
        )
        return
    with pytest.raises(ServiceError) as error:
        services.time_zone_set(team=team, actor=admin, time_zone=zone)
    assert error.value.param == "time_zone"


def test_periods_follow_the_zone_and_dst():
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    # the night clocks go back: that day is 25 hours long in Paris
    day = periods.window("day", paris, datetime(2025, 10, 26, 12, tzinfo=UTC))
    assert day.id == "2025-10-26"
    assert day.end.timestamp() - day.start.timestamp() == 25 * 3600
    # 23:30 UTC on Jan 31 is already February in Tokyo
    month = periods.window(
        "month", ZoneInfo("Asia/Tokyo"), datetime(2025, 1, 31, 23, 30, tzinfo=UTC)
    )
    assert month.id == "2025-02"
    assert month.start == datetime(2025, 2, 1, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert month.end == datetime(2025, 3, 1, tzinfo=ZoneInfo("Asia/Tokyo"))
    december = periods.window("month", UTC, datetime(2025, 12, 31, 23, 59, tzinfo=UTC))
    assert december.end == datetime(2026, 1, 1, tzinfo=UTC)
