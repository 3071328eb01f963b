"""Events of a run's life, written by the executor in its own transactions.

Cost is what the usage ledger billed for the run's attempts (written in the same
transaction just before), so the live tiles and the usage pages agree.
"""

import functools
from decimal import Decimal

from apps.events.outbox import build, emit
from apps.events.statement_events import RowEvent

FINAL_TYPES = {"succeeded": "run.succeeded", "failed": "run.failed", "cancelled": "run.cancelled"}


def _base(run) -> dict:
    return {
        "run_id": run.pk,
        "model": run.served_model or run.model,
        "assistant_id": run.assistant_id,
        "key_id": run.api_key_id,
    }


def _about(run) -> dict:
    """What every event of a run says besides its data: the run, its assistant and key."""
    return {
        "subject": f"run/{run.pk}",
        "actor": None,
        "assistant_id": run.assistant_id,
        "key_id": run.api_key_id,
    }


def _emit(run, type_: str, data: dict) -> None:
    emit(run.team, type_, data=data, **_about(run))


# run.started's fields, each from the run's attribute of that name: the same event
# whether the claim writes it from Python (started) or in its own statement
# (started_in_statement)
STARTED = {
    "run_id": "id",
    "model": "model",
    "assistant_id": "assistant_id",
    "key_id": "api_key_id",
    "delivery": "deliveries",
}


def started(run) -> None:
    _emit(run, "run.started", {name: getattr(run, attr) for name, attr in STARTED.items()})


@functools.cache
def started_in_statement(model) -> RowEvent:
    """run.started written by the statement that claims the run (``executor``)."""
    return RowEvent(model, "run.started", subject_prefix="run/", data=STARTED)


def _billed(usage_records) -> tuple[Decimal, bool, int, int]:
    cost = sum((r.cost for r in usage_records), Decimal(0))
    priced = not any(r.unpriced for r in usage_records)
    return cost, priced, len(usage_records), sum(r.total_tokens for r in usage_records)


def finished_event(run, usage_records) -> tuple[str, dict] | None:
    """The run's final event type and data, with what the ledger just billed for its
    attempts; None for a run that did not end."""
    type_ = FINAL_TYPES.get(run.status)
    if type_ is None:
        return None
    cost, priced, attempts, attempt_tokens = _billed(usage_records)
    data = {
        **_base(run),
        "prompt_tokens": run.prompt_tokens or 0,
        "completion_tokens": run.completion_tokens or 0,
        "total_tokens": run.total_tokens or 0,
        "usage_estimated": bool(run.usage_estimated),
        "cost": format(cost.normalize() if cost else Decimal(0), "f"),
        "priced": priced,
        "latency_ms": run.latency_ms,
        "attempts": attempts,
        "attempt_tokens": attempt_tokens,
    }
    if type_ == "run.succeeded":
        data.update(finish_reason=run.finish_reason or "", output=run.output)
    elif type_ == "run.failed":
        data.update(error_code=run.error_code or "error", error=run.error)
    return type_, data


def finished(run, usage_records) -> None:
    """Write the run's final event in the caller's transaction."""
    event = finished_event(run, usage_records)
    if event is not None:
        _emit(run, *event)


def finished_row(run, usage_records):
    """The run's final event as an unsaved outbox row (for a statement that writes it
    with the run's other final rows), or None."""
    event = finished_event(run, usage_records)
    if event is None:
        return None
    type_, data = event
    return build(run.team, type_, data=data, **_about(run))
