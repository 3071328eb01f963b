"""The usage page (charts, totals, top lists, exports) and the team's prices page.

The page asks ``selectors.usage_summary`` exactly what the API's summary asks,
so the numbers on screen are the API's numbers.
"""

import importlib
import importlib.util

from django.contrib import messages
from django.shortcuts import redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.views.decorators.http import require_POST

from apps.core.errors import ServiceError
from apps.teams.decorators import team_view
from apps.teams.permissions import Action, can
from apps.usage import selectors, services
from apps.usage.forms import PriceForm, UsageFilterForm
from apps.usage.query import Filters, filters_for, window_for

# The quotas app may offer ``selectors.quota_status_for(team)`` (and its own
# ``quotas/_status.html``); the usage page shows budgets only when it does.
QUOTAS_SELECTORS = "apps.quotas.selectors"
QUOTAS_TEMPLATE = "quotas/_status.html"


def quota_status(team):
    """What the quotas app says about the team's budgets, or None when it can't say yet."""
    if importlib.util.find_spec(QUOTAS_SELECTORS) is None:
        return None
    status_for = getattr(importlib.import_module(QUOTAS_SELECTORS), "quota_status_for", None)
    return status_for(team) if callable(status_for) else None


def _quota_template() -> str:
    try:
        get_template(QUOTAS_TEMPLATE)
    except TemplateDoesNotExist:
        return "usage/_quota_status.html"
    return QUOTAS_TEMPLATE


def _question(team, form):
    """Window and filters from the filter bar; bad input shows as an error on the page
    and the default range is shown instead of a 500 or an empty page."""
    error = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            window = window_for(team.zone, data["range"] or None, data["start"], data["end"])
            filters = filters_for(
                team,
                assistant=data["assistant"] or None,
                model=data["model"] or None,
                key=data["key"] or None,
                prompt_version=data["prompt_version"],
            )
            return window, filters, None
        except ServiceError as problem:
            error = problem.message
    else:
        error = "; ".join(f"{name}: {' '.join(errs)}" for name, errs in form.errors.items())
    return window_for(team.zone), Filters(), error


def chart_data(summary) -> dict:
    """Series for the charts; cost as float is fine for drawing (totals stay exact)."""
    series = summary.series
    return {
        "labels": [p.label for p in series],
        "requests": [p.totals.requests for p in series],
        "errors": [p.totals.errors for p in series],
        "prompt_tokens": [p.totals.prompt_tokens for p in series],
        "completion_tokens": [p.totals.completion_tokens for p in series],
        "cost": [float(p.totals.cost) for p in series],
        "p50": [p.totals.latency_p50_ms for p in series],
        "p95": [p.totals.latency_p95_ms for p in series],
    }


@team_view(Action.VIEW)
def usage_dashboard(request, team):
    form = UsageFilterForm(request.GET or None, team=team)
    window, filters, error = _question(team, form)
    services.usage_rollups_catch_up()
    summary = selectors.usage_summary(team, window, filters)
    query = request.GET.urlencode() if error is None else ""
    api = f"/api/v1/teams/{team.slug}/usage"
    context = {
        "form": form,
        "error": error,
        "summary": summary,
        "totals": summary.totals,
        "window": window,
        "chart": chart_data(summary),
        "api_url": f"{api}?{query}" if query else api,
        "records_csv": f"{api}/records/export?{query}",
        "daily_csv": f"{api}/aggregates/export?granularity=day&{query}",
        "hourly_csv": f"{api}/aggregates/export?granularity=hour&{query}",
        "quotas": quota_status(team),
        "quota_template": _quota_template(),
    }
    return render(request, "usage/dashboard.html", context)


def _prices_context(request, team, form=None) -> dict:
    return {
        "prices": selectors.prices_for_team(team)[:500],
        "unpriced": selectors.unpriced_models_recently(team),
        "can_manage": can(request.user, team, Action.MANAGE_BACKENDS),
        "form": form or PriceForm(team=team),
    }


@team_view(Action.VIEW)
def price_list(request, team):
    return render(request, "usage/prices.html", _prices_context(request, team))


@require_POST
@team_view(Action.MANAGE_BACKENDS)
def price_create(request, team):
    form = PriceForm(request.POST, team=team)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.price_override_create(team=team, actor=request.user, **data)
        except ServiceError as error:
            form.add_error(error.param if error.param in form.fields else None, error.message)
        else:
            messages.success(request, f"Price for {data['model']} on {data['backend']} saved.")
            return redirect("usage:prices", team_slug=team.slug)
    context = _prices_context(request, team, form)
    return render(request, "usage/prices.html", context, status=400)
