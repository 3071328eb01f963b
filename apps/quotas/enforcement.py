"""Holding runs and requests to their quotas: reserve before a run, settle after.

``inference.services.run_create`` calls :func:`reserve_for_run` before it writes
the run: the run's worst case (estimated prompt tokens plus its completion cap,
priced at the dearest of its targets) is taken from every limit at once by one
Redis script, or the request is refused with a 429 and nothing is written. The
reservation is stored on the run. ``executor.write_final`` calls
:func:`settle_run` in the transaction that finalizes the run (exactly once per
run); after commit the reservation is given back and the actual tokens and cost
are counted. A run that fails or is cancelled counts what its attempts really
used, usually nothing. Settling twice is harmless: the script only acts while
the reservation record exists.

Why over-spending can't happen: a reservation is only granted when the settled
usage plus every reservation in flight plus this worst case fits the budget,
checked and taken in one atomic step; settlement replaces a reservation by the
actual usage, which is at most the worst case as long as the backend honours the
completion cap and the prompt estimate is not low (the estimator counts like
GPT tokenizers and tools add to it). A request without a cap that is held to a
token or cost limit is reserved at ``QUOTA_DEFAULT_MAX_TOKENS`` and sent with that
cap (:func:`capped_parameters`), so a long reply can't run past its reservation.

A run settles at the tokens and cost the usage ledger billed for its attempts
in the same transaction, so the two never disagree and nothing is priced twice.
"""

import json
import logging
import math
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.errors import RateLimited
from apps.inference import tokens as token_estimates
from apps.quotas import announcements, periods, reconcile, rules, store
from apps.teams.permissions import api_key_of

logger = logging.getLogger(__name__)

RECORD_VERSION = 1
NAMES = {
    "token_budget": ("token budget", "tokens"),
    "cost_budget": ("cost budget", "cost"),
    "requests_per_minute": ("requests per minute", "requests"),
    "tokens_per_minute": ("tokens per minute", "tokens"),
    "concurrent_runs": ("concurrent runs", "runs"),
}


def _ms(at) -> int:
    return int(at.timestamp() * 1000)


def _cost_of(**kwargs) -> Decimal:
    """The price list's cost; 0 while the usage app has no pricing (unpriced is free)."""
    try:
        from apps.usage.pricing import cost_of
    except ImportError:  # pragma: no cover - the pricing module ships with usage
        return Decimal(0)
    cost, _priced = cost_of(**kwargs)
    return cost


def _callers_cap(parameters: dict) -> int | None:
    cap = parameters.get("max_completion_tokens") or parameters.get("max_tokens")
    return int(cap) if cap else None


def completion_cap(parameters: dict) -> int:
    return _callers_cap(parameters) or settings.QUOTA_DEFAULT_MAX_TOKENS


def prompt_estimate(messages: list[dict], parameters: dict) -> int:
    """Prompt tokens as the backend will count them, or a little more: tool
    definitions are part of the prompt at OpenAI, so they are counted too."""
    estimate = token_estimates.estimate_messages_tokens(messages)
    if parameters.get("tools"):
        estimate += token_estimates.estimate_tokens(json.dumps(parameters["tools"]))
    return estimate


def _holds_usage(scope: rules.ScopeRules) -> bool:
    return any(
        limit is not None
        for limit in (scope.token_budget, scope.cost_budget, scope.tokens_per_minute)
    )


def capped_parameters(parameters: dict, record: dict | None, backend_kind: str) -> dict:
    """The parameters a run is sent with: when its reservation assumed the default
    completion cap, the backend gets that cap too. OpenAI's own API takes
    ``max_completion_tokens`` (its reasoning models refuse ``max_tokens``); other
    OpenAI-compatible servers know ``max_tokens``."""
    if not record or not record.get("cap"):
        return parameters
    field = "max_completion_tokens" if backend_kind in {"openai", "azure_openai"} else "max_tokens"
    return {**parameters, field: record["cap"]}


def worst_case(
    *, team, backend_id: int, model: str, messages, parameters, fallbacks, priced: bool = True
) -> tuple[int, Decimal]:
    """Tokens and cost a run can use at most: a fallback may be dearer than the primary."""
    parameters = parameters or {}
    prompt = prompt_estimate(messages, parameters)
    completion = completion_cap(parameters)
    cost = Decimal(0)
    if priced:
        targets = [(backend_id, model)] + [
            (f["backend"], f.get("model") or model) for f in fallbacks or ()
        ]
        cost = max(
            _cost_of(
                team=team,
                backend=target_backend,
                model=target_model,
                prompt_tokens=prompt,
                completion_tokens=completion,
            )
            for target_backend, target_model in targets
        )
    return prompt + completion, cost


def _limit(value) -> int:
    return -1 if value is None else int(value)


def _expire_at(window: periods.Window) -> int:
    return int(window.end.timestamp()) + settings.QUOTA_PERIOD_KEEP_SECONDS


def _scope_spec(scope: rules.ScopeRules, window, *, count_requests: bool) -> dict:
    cost_limit = store.to_micros(scope.cost_budget) if scope.cost_budget is not None else None
    return {
        "n": scope.name,
        "p": window.id if window else None,
        "bx": _expire_at(window) if window else 0,
        "reset": window.end_ms if window else -1,
        "tl": _limit(scope.token_budget) if window else -1,
        "cl": _limit(cost_limit) if window else -1,
        "rl": _limit(scope.requests_per_minute) if count_requests else -1,
        "pl": _limit(scope.tokens_per_minute),
        "ul": _limit(scope.max_concurrent_runs),
    }


def _retry_after(reset_ms: int | None, now_ms: int) -> int:
    if reset_ms is None:
        return 1
    return max(1, math.ceil((reset_ms - now_ms) / 1000))


def _shown(name: str, value: int):
    """Counter units as people read them: costs are kept in millionths."""
    return str(store.from_micros(value)) if name == "cost_budget" else value


def _clock(at: datetime, zone, now_ms: int) -> str:
    """A reset time as people read it on the team's clock: the time, the date too
    when it is more than a day away, and the zone's name."""
    local = at.astimezone(zone)
    seconds = ":%S" if local.second else ""
    shown = local.strftime(f"%H:%M{seconds}")
    if at.timestamp() * 1000 - now_ms > 86_400_000:
        shown = f"{local.day} {local.strftime('%b %Y')} {shown}"
    return f"{shown} {getattr(zone, 'key', None) or local.tzname()}"


def _duration(seconds: int) -> str:
    """20 h 46 min, 5 min 3 s, 42 s, 3 d 4 h."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def exceeded(
    refusal: store.Refusal, scope: rules.ScopeRules, window, zone, now_ms: int
) -> RateLimited:
    """The 429 naming the limit, where it stands and when it resets."""
    label, unit = NAMES[refusal.name]
    budget = refusal.name in {"token_budget", "cost_budget"}
    if budget:
        label = f"{label} per {window.kind}"
        resets = window.end
    elif refusal.reset_ms is not None:
        resets = datetime.fromtimestamp(refusal.reset_ms / 1000, tz=zone)
    else:
        resets = None
    retry_after = _retry_after(refusal.reset_ms, now_ms)
    whose = "The team's" if scope.scope == "team" else "This API key's"
    current, limit = _shown(refusal.name, refusal.current), _shown(refusal.name, refusal.limit)
    requested = _shown(refusal.name, refusal.requested)
    if refusal.name == "concurrent_runs":
        message = f"{whose} limit of {limit} concurrent runs is reached ({current} running)."
        when = " Try again when one of them finishes."
    else:
        in_use = "used or reserved" if budget else "in the last minute"
        message = (
            f"{whose} {label} is {limit} {unit}; {current} {unit} are {in_use} and this "
            f"request needs up to {requested}."
        )
        when = f" It resets at {_clock(resets, zone, now_ms)} (in {_duration(retry_after)})."
        if refusal.requested > refusal.limit and refusal.name != "requests_per_minute":
            message += " This request alone needs more than the whole limit: lower max_tokens."
    return RateLimited(
        message + when,
        retry_after=retry_after,
        code="insufficient_quota" if budget else "rate_limit_exceeded",
        limit={
            "name": refusal.name,
            "scope": scope.scope,
            "limit": limit,
            "current": current,
            "requested": requested,
            "unit": unit,
            "period": window.id if budget else "minute" if resets else None,
            "resets_at": resets.isoformat() if resets else None,
        },
    )


def reserve_for_run(
    *, team, actor, backend_id: int, model: str, messages, parameters, fallbacks
) -> dict | None:
    """Reserve the run's worst case on every scope it is held to; the record to store
    on the run, None when nothing limits it, or RateLimited."""
    scopes = rules.for_run(team.pk, api_key_of(actor))
    if not scopes:
        return None
    needs_cost = any(s.cost_budget is not None for s in scopes)
    tokens, cost = worst_case(
        team=team,
        backend_id=backend_id,
        model=model,
        messages=messages,
        parameters=parameters,
        fallbacks=fallbacks,
        priced=needs_cost,
    )
    now = timezone.now()
    now_ms = _ms(now)
    zone = team.zone
    windows = [periods.window(s.period, zone, now) if s.period else None for s in scopes]
    reservation_id = store.new_id()
    uncapped = _callers_cap(parameters or {}) is None
    record = {
        "v": RECORD_VERSION,
        "id": reservation_id,
        "team": team.pk,
        "at": now_ms,
        "tokens": tokens,
        "cost": store.to_micros(cost),
        # the completion cap the run must be sent with, when the caller gave none
        "cap": completion_cap(parameters or {})
        if uncapped and any(_holds_usage(s) for s in scopes)
        else None,
        "s": [
            {
                "n": s.name,
                "q": s.quota_id,
                "p": w.id if w else None,
                "bx": _expire_at(w) if w else 0,
            }
            for s, w in zip(scopes, windows, strict=True)
        ],
    }
    spec = {
        "pre": store.prefix(),
        "id": reservation_id,
        "now": now_ms,
        "tokens": tokens,
        "cost": record["cost"],
        "rttl": settings.QUOTA_RESERVATION_TTL_SECONDS,
        "dl": now_ms + settings.QUOTA_RUN_DEADLINE_SECONDS * 1000,
        "record": json.dumps(record),
        # a key's requests are counted at its door (require_request), the team's here
        "s": [
            _scope_spec(s, w, count_requests=s.scope == "team")
            for s, w in zip(scopes, windows, strict=True)
        ],
    }
    try:
        refusal = store.reserve(json.dumps(spec))
    except store.Unseeded as unseeded:
        # Set the budgets from the ledger first, so an undercount (a new quota, a new
        # period, counters lost in a restart) never decides a refusal; then once more.
        reconcile.seed({scopes[i].quota_id for i in unseeded.scope_indexes})
        refusal = store.reserve(json.dumps({**spec, "seeded_ok": True}))
    if refusal is not None:
        index = refusal.scope_index
        error = exceeded(refusal, scopes[index], windows[index], zone, now_ms)
        announcements.limit_hit(team.pk, scopes[index], error.limit, now_ms)
        raise error
    return record


def release(record: dict | None) -> None:
    """Give a reservation back without counting anything (its run was never written)."""
    if not record:
        return
    try:
        store.release(record["id"])
    except Exception:  # Redis away: reconciliation releases it later
        logger.exception("quota: releasing failed", extra={"reservation": record["id"]})


@contextmanager
def released_on_error(record: dict | None):
    """Release the reservation if writing its run fails; a rollback after this block
    is caught by reconciliation, which releases reservations without a run."""
    try:
        yield
    except BaseException:
        release(record)
        raise


def settle_run(run, usage_records) -> None:
    """Called where the run is finalized: settle its reservation once that commits,
    at the tokens and cost the usage ledger just billed for its attempts."""
    record = run.quota_reservation
    if not record:
        return
    used_tokens = sum(r.total_tokens for r in usage_records)
    cost = store.to_micros(sum((r.cost for r in usage_records), Decimal(0)))
    finished_ms = _ms(run.finished_at or timezone.now())
    transaction.on_commit(
        lambda: _settle(record, tokens=used_tokens, cost=cost, finished_ms=finished_ms)
    )


def _settle(record: dict, *, tokens: int, cost: int, finished_ms: int) -> None:
    """Give the reservation back and count what was used (``store.release`` gives
    one back counting nothing)."""
    spec = {
        "pre": store.prefix(),
        "id": record["id"],
        "tokens": tokens,
        "cost": cost,
        "fin": finished_ms,
        "now": int(time.time() * 1000),
        "add": True,
    }
    try:
        used = store.settle(json.dumps(spec))
    except Exception:  # Redis away: reconciliation settles it from the database later
        logger.exception("quota: settling failed", extra={"reservation": record["id"]})
        return
    if used:
        from apps.quotas import thresholds

        thresholds.check_after_settle(record, used)


def require_request(key) -> None:
    """Count one request of an API key against its requests per minute (the key's
    own field and its quota, whichever is lower), or raise RateLimited."""
    scope = rules.for_key(key)
    if scope is None or scope.requests_per_minute is None:
        return
    now_ms = int(time.time() * 1000)
    refusal = store.hit(scope.name, scope.requests_per_minute, now_ms)
    if refusal is not None:
        team = getattr(key, "team", None)
        error = exceeded(refusal, scope, None, team.zone if team else UTC, now_ms)
        announcements.limit_hit(key.team_id, scope, error.limit, now_ms)
        raise error
