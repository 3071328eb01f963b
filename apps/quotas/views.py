"""The quotas page: each quota's limits, consumption and "resets in", and for
owners and admins the forms to set them, raise them for a while, and pick the
time zone periods follow."""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.core.errors import ServiceError
from apps.quotas import selectors, services
from apps.quotas.forms import IncreaseForm, QuotaForm, TimeZoneForm
from apps.teams.decorators import team_view
from apps.teams.permissions import Action, can


def quotas_url(team) -> str:
    return settings.SITE_URL + reverse("quotas:list", args=[team.slug])


def _context(request, team, **forms) -> dict:
    quotas = list(selectors.quotas_of(team))
    return {
        "quotas": [(quota, selectors.quota_status(quota)) for quota in quotas],
        "can_manage": can(request.user, team, Action.MANAGE_QUOTAS),
        "form": forms.get("form") or QuotaForm(team=team),
        "increase_form": forms.get("increase_form") or IncreaseForm(),
        "increase_for": forms.get("increase_for"),
        "zone_form": forms.get("zone_form") or TimeZoneForm(initial={"time_zone": team.time_zone}),
        "now": timezone.now(),
    }


def _page(request, team, status=200, **forms):
    """The page, its dates and times on the team's clock (the one periods follow and
    increases are typed in)."""
    with timezone.override(team.zone):
        return render(request, "quotas/list.html", _context(request, team, **forms), status=status)


@team_view(Action.VIEW)
def quota_list(request, team):
    return _page(request, team)


def _invalid(request, team, status=400, **forms):
    return _page(request, team, status=status, **forms)


def _field_error(form, error: ServiceError) -> None:
    form.add_error(error.param if error.param in form.fields else None, error.message)


@require_POST
@team_view(Action.MANAGE_QUOTAS)
def quota_create(request, team):
    form = QuotaForm(request.POST, team=team)
    if form.is_valid():
        data = dict(form.cleaned_data)
        try:
            services.quota_create(team=team, actor=request.user, **data)
        except ServiceError as error:
            _field_error(form, error)
        else:
            messages.success(request, "Quota saved.")
            return redirect("quotas:list", team.slug)
    return _invalid(request, team, form=form)


@require_POST
@team_view(Action.MANAGE_QUOTAS)
def quota_update(request, team, quota_id: int):
    quota = selectors.quota_in_team(team, quota_id)
    form = QuotaForm(request.POST, team=team, editing=True)
    if form.is_valid():
        try:
            services.quota_update(quota=quota, actor=request.user, **form.cleaned_data)
        except ServiceError as error:
            _field_error(form, error)
        else:
            messages.success(request, "Quota changed.")
            return redirect("quotas:list", team.slug)
    return _invalid(request, team, form=form)


@require_POST
@team_view(Action.MANAGE_QUOTAS)
def quota_delete(request, team, quota_id: int):
    services.quota_delete(quota=selectors.quota_in_team(team, quota_id), actor=request.user)
    messages.success(request, "Quota removed.")
    return redirect("quotas:list", team.slug)


@require_POST
@team_view(Action.MANAGE_QUOTAS)
def increase_create(request, team, quota_id: int):
    quota = selectors.quota_in_team(team, quota_id)
    form = IncreaseForm(request.POST)
    with timezone.override(team.zone):  # the date typed is on the team's clock
        valid = form.is_valid()
    if valid:
        data = {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
        ends_at = data.pop("ends_at")
        try:
            services.increase_create(quota=quota, actor=request.user, ends_at=ends_at, **data)
        except ServiceError as error:
            _field_error(form, error)
        else:
            messages.success(request, "Temporary increase added.")
            return redirect("quotas:list", team.slug)
    return _invalid(request, team, increase_form=form, increase_for=quota.pk)


@require_POST
@team_view(Action.MANAGE_QUOTAS)
def increase_end(request, team, quota_id: int, increase_id: int):
    quota = selectors.quota_in_team(team, quota_id)
    services.increase_end(
        increase=selectors.increase_in_quota(quota, increase_id), actor=request.user
    )
    messages.success(request, "Increase ended.")
    return redirect("quotas:list", team.slug)


@require_POST
@team_view(Action.MANAGE_QUOTAS)
def time_zone_set(request, team):
    form = TimeZoneForm(request.POST)
    if form.is_valid():
        try:
            services.time_zone_set(
                team=team, actor=request.user, time_zone=form.cleaned_data["time_zone"]
            )
        except ServiceError as error:
            _field_error(form, error)
        else:
            messages.success(request, "Time zone saved.")
            return redirect("quotas:list", team.slug)
    return _invalid(request, team, zone_form=form)
