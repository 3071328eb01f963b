"""The usage ledger: one billed record per backend attempt, written with the run's end.

``record`` runs inside the worker's transaction that stores the run's final
state (``executor.write_final``), which happens once per run thanks to the
claim token; the one-to-one link to the attempt makes a second write fail at
the database too. Cost is computed here at the attempt's time and stored, so a
later price change never rewrites it.

This is on every request's path, so it costs one INSERT for all of a run's
attempts: prices come from the per-process cache (``pricing``) and the rollups
are folded from the ledger later, in batches (``folding``), instead of two
upserts per run that every worker would queue on for the same hot rows.
"""

from decimal import Decimal

from apps.core import rows
from apps.usage import pricing
from apps.usage.models import AttemptStatus, CurrentTransactionId, UsageRecord


def billed_cost(usage_records) -> dict:
    """What the ledger billed for a run's attempts, written as the usage page writes
    cost, and whether every attempt had a price: an unpriced model is recorded at 0,
    which is not the same as free."""
    amount = sum((record.cost for record in usage_records), Decimal(0))
    return {
        "amount": pricing.plain_amount(amount),
        "priced": not any(record.unpriced for record in usage_records),
    }


def _status(run, attempt, is_last: bool) -> str:
    if attempt.succeeded:
        return AttemptStatus.SUCCEEDED
    if is_last and run.status == "cancelled":
        return AttemptStatus.CANCELLED
    return AttemptStatus.FAILED


def build(run, attempts) -> list[UsageRecord]:
    """Unsaved records for the attempts, priced at each attempt's end."""
    records = []
    for index, attempt in enumerate(attempts):
        at = attempt.finished_at
        price = pricing.price_for(
            team=run.team_id, backend=attempt.backend_id, model=attempt.model, at=at
        )
        records.append(
            UsageRecord(
                team_id=run.team_id,
                run_id=run.pk,
                attempt_id=attempt.pk,
                user_id=run.created_by_id,
                api_key_id=run.api_key_id,
                assistant_id=run.assistant_id,
                prompt_version_id=run.prompt_version_id,
                backend_id=attempt.backend_id,
                model=attempt.model,
                status=_status(run, attempt, index == len(attempts) - 1),
                http_status=attempt.http_status,
                prompt_tokens=attempt.prompt_tokens,
                completion_tokens=attempt.completion_tokens,
                total_tokens=attempt.total_tokens,
                cached_tokens=attempt.cached_tokens,
                usage_estimated=attempt.usage_estimated,
                cost=pricing.cost_at(
                    price,
                    prompt_tokens=attempt.prompt_tokens,
                    completion_tokens=attempt.completion_tokens,
                    cached_tokens=attempt.cached_tokens or 0,
                ),
                unpriced=price is None,
                price=price,
                latency_ms=attempt.latency_ms,
                ttft_ms=attempt.ttft_ms,
                txid=CurrentTransactionId(),  # the fold's position: apps/usage/folding.py
                occurred_at=at,
            )
        )
    return records


def record(run, attempts) -> list[UsageRecord]:
    """Bill the run's attempts in the caller's transaction; returns the records written."""
    if not attempts:
        return []
    records = build(run, attempts)
    rows.insert(records)
    return records
