"""Quotas over the REST API: list and read them (any member or a ``read`` key),
set, change and remove them and their temporary increases (owners and admins,
or an ``admin`` key), and the time zone their periods follow."""

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Status

from apps.core.api_errors import BODY_ERRORS, with_errors
from apps.core.api_pagination import Rows, paginated
from apps.keys.selectors import key_in_team
from apps.quotas import periods, selectors, services
from apps.quotas.models import Quota, QuotaIncrease
from apps.quotas.schemas import (
    IncreaseIn,
    IncreaseOut,
    LimitUseOut,
    PeriodOut,
    QuotaIn,
    QuotaOut,
    QuotaPatch,
    TimeZoneIn,
    TimeZoneOut,
)
from apps.teams.permissions import Action
from apps.teams.selectors import team_for_request

router = Router(tags=["quotas"])


def increase_out(increase: QuotaIncrease) -> IncreaseOut:
    return IncreaseOut(
        id=increase.pk,
        extra_tokens=increase.extra_tokens,
        extra_cost=increase.extra_cost,
        extra_requests_per_minute=increase.extra_requests_per_minute,
        extra_tokens_per_minute=increase.extra_tokens_per_minute,
        extra_concurrent_runs=increase.extra_concurrent_runs,
        starts_at=increase.starts_at,
        ends_at=increase.ends_at,
        reason=increase.reason,
        active=increase.is_active(),
    )


def quota_out(quota: Quota) -> QuotaOut:
    window = periods.window(quota.period, quota.team.zone)
    increases = getattr(quota, "current_increases", None)
    if increases is None:
        increases = quota.increases.filter(ends_at__gt=timezone.now()).order_by("starts_at")
    return QuotaOut(
        id=quota.pk,
        scope=quota.scope,
        api_key=quota.api_key.public_id if quota.api_key else None,
        period=quota.period,
        token_budget=quota.token_budget,
        cost_budget=quota.cost_budget,
        requests_per_minute=quota.requests_per_minute,
        tokens_per_minute=quota.tokens_per_minute,
        max_concurrent_runs=quota.max_concurrent_runs,
        thresholds=quota.thresholds or [],
        time_zone=quota.team.time_zone,
        current_period=PeriodOut(id=window.id, start=window.start, end=window.end),
        usage=[
            LimitUseOut(
                name=use.name,
                unit=use.unit,
                limit=use.limit,
                consumed=use.consumed,
                reserved=use.reserved,
                period=use.period,
                resets_at=use.resets_at,
            )
            for use in selectors.quota_status(quota)
        ],
        increases=[increase_out(i) for i in increases],
        created_at=quota.created_at,
        updated_at=quota.updated_at,
    )


def _fresh(team, quota_id: int) -> QuotaOut:
    return quota_out(selectors.quota_in_team(team, quota_id))


@router.get(
    "/{team_slug}/quotas",
    response=with_errors(list[QuotaOut]),
    operation_id="quotas_list",
    summary="The team's quotas and where each limit stands",
)
@paginated
def quotas_list(request: HttpRequest, team_slug: str):
    """The team's own quota first, then the keys' quotas, each with its current period
    and, per limit, what is consumed, what runs in flight hold and when it resets."""
    team = team_for_request(request, team_slug, Action.VIEW)
    return Rows(selectors.quotas_of(team), each=quota_out)


@router.post(
    "/{team_slug}/quotas",
    response=with_errors({201: QuotaOut}, *BODY_ERRORS, 409),
    operation_id="quotas_create",
    summary="Set a quota for the team or for one of its keys",
)
def quotas_create(request: HttpRequest, team_slug: str, payload: QuotaIn):
    """One quota for the team (no `api_key`) and at most one per key (409 otherwise).
    Limits left out or null don't apply. Needs the owner or admin role or an `admin`
    key. Spending already recorded this period counts from the start."""
    team = team_for_request(request, team_slug, Action.MANAGE_QUOTAS)
    data = payload.dict()
    public_id = data.pop("api_key")
    key = key_in_team(team, public_id) if public_id else None
    quota = services.quota_create(team=team, actor=request.user, api_key=key, **data)
    return Status(201, _fresh(team, quota.pk))


@router.get(
    "/{team_slug}/quotas/{quota_id}",
    response=with_errors(QuotaOut),
    operation_id="quotas_get",
    summary="One quota with its consumption",
)
def quotas_get(request: HttpRequest, team_slug: str, quota_id: int):
    """Consumption is read from the counters every process shares, so it is what the
    next request will be judged by."""
    team = team_for_request(request, team_slug, Action.VIEW)
    return _fresh(team, quota_id)


@router.patch(
    "/{team_slug}/quotas/{quota_id}",
    response=with_errors(QuotaOut, *BODY_ERRORS),
    operation_id="quotas_update",
    summary="Change a quota's limits",
)
def quotas_update(request: HttpRequest, team_slug: str, quota_id: int, payload: QuotaPatch):
    """Only the fields sent change; null removes a limit. Applies to the next request
    (other processes within `QUOTA_RULES_CACHE_SECONDS`)."""
    team = team_for_request(request, team_slug, Action.MANAGE_QUOTAS)
    quota = selectors.quota_in_team(team, quota_id)
    services.quota_update(quota=quota, actor=request.user, **payload.dict(exclude_unset=True))
    return _fresh(team, quota_id)


@router.delete(
    "/{team_slug}/quotas/{quota_id}",
    response=with_errors({204: None}),
    operation_id="quotas_delete",
    summary="Remove a quota",
)
def quotas_delete(request: HttpRequest, team_slug: str, quota_id: int):
    """Its limits stop applying; past alerts go with it."""
    team = team_for_request(request, team_slug, Action.MANAGE_QUOTAS)
    services.quota_delete(quota=selectors.quota_in_team(team, quota_id), actor=request.user)
    return Status(204, None)


@router.post(
    "/{team_slug}/quotas/{quota_id}/increases",
    response=with_errors({201: IncreaseOut}, *BODY_ERRORS),
    operation_id="quota_increases_create",
    summary="Raise a quota's limits until a date",
)
def quota_increases_create(
    request: HttpRequest, team_slug: str, quota_id: int, payload: IncreaseIn
):
    """The extras are added to the limits the quota sets (a limit it doesn't set is
    already unlimited: 400) from `starts_at` until `ends_at`, then drop off on their
    own."""
    team = team_for_request(request, team_slug, Action.MANAGE_QUOTAS)
    quota = selectors.quota_in_team(team, quota_id)
    increase = services.increase_create(quota=quota, actor=request.user, **payload.dict())
    return Status(201, increase_out(increase))


@router.delete(
    "/{team_slug}/quotas/{quota_id}/increases/{increase_id}",
    response=with_errors({204: None}),
    operation_id="quota_increases_end",
    summary="End a temporary increase now",
)
def quota_increases_end(request: HttpRequest, team_slug: str, quota_id: int, increase_id: int):
    """An increase that has not started is removed; a running one ends now."""
    team = team_for_request(request, team_slug, Action.MANAGE_QUOTAS)
    quota = selectors.quota_in_team(team, quota_id)
    services.increase_end(
        increase=selectors.increase_in_quota(quota, increase_id), actor=request.user
    )
    return Status(204, None)


@router.get(
    "/{team_slug}/quota-time-zone",
    response=with_errors(TimeZoneOut),
    operation_id="quota_time_zone_get",
    summary="The time zone quota periods follow",
)
def quota_time_zone_get(request: HttpRequest, team_slug: str):
    """Days and months of budgets begin at midnight in this zone (the team's)."""
    team = team_for_request(request, team_slug, Action.VIEW)
    return TimeZoneOut(time_zone=team.time_zone)


@router.put(
    "/{team_slug}/quota-time-zone",
    response=with_errors(TimeZoneOut, *BODY_ERRORS),
    operation_id="quota_time_zone_set",
    summary="Set the time zone quota periods follow",
)
def quota_time_zone_set(request: HttpRequest, team_slug: str, payload: TimeZoneIn):
    """An IANA name such as `Europe/Paris`; an unknown one is 400. It is the team's
    time zone, so usage days follow it too."""
    team = team_for_request(request, team_slug, Action.MANAGE_QUOTAS)
    team = services.time_zone_set(team=team, actor=request.user, time_zone=payload.time_zone)
    return TimeZoneOut(time_zone=team.time_zone)
