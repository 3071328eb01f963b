"""Prices and finished runs for usage tests.

``finish_run`` ends a run the way a worker does: ``executor.write_final`` under
the run's row lock, so the ledger hook under test is the real one.
"""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from apps.inference.backends import CallResult
from apps.inference.executor import Outcome, Target, write_final
from apps.inference.models import ChatRun, RunAttempt, RunStatus
from apps.usage.models import Price

HELLO = [{"role": "user", "content": "Hello there"}]


def price(model="sim-small", inp="1", out="2", cached=None, *, team=None, backend=None, at=None):
    return Price.objects.create(
        team=team,
        backend=backend,
        model=model,
        input_per_million=Decimal(inp),
        output_per_million=Decimal(out),
        cached_input_per_million=Decimal(cached) if cached is not None else None,
        effective_from=at or timezone.now() - timedelta(days=3650),
    )


def attempt(
    prompt=10,
    completion=20,
    *,
    succeeded=True,
    estimated=False,
    latency_ms=120,
    model=None,
    backend=None,
    at=None,
    http_status=None,
) -> dict:
    return {
        "prompt": prompt,
        "completion": completion,
        "succeeded": succeeded,
        "estimated": estimated,
        "latency_ms": latency_ms,
        "model": model,
        "backend": backend,
        "at": at,
        "http_status": http_status,
    }


def finish_run(
    team,
    actor,
    backend,
    *,
    model="sim-small",
    attempts=None,
    status=RunStatus.SUCCEEDED,
    assistant=None,
    prompt_version=None,
    api_key=None,
) -> ChatRun:
    """A run that ends with the given attempts, billed by the real hook."""
    run = ChatRun.objects.create(
        team=team,
        created_by=None if api_key else actor,
        api_key=api_key,
        assistant=assistant,
        prompt_version=prompt_version,
        backend=backend,
        model=model,
        messages=HELLO,
        status=RunStatus.RUNNING,
        started_at=timezone.now(),
    )
    specs = attempts if attempts is not None else [attempt()]
    with transaction.atomic():
        locked = ChatRun.objects.select_for_update().get(pk=run.pk)
        rows = []
        for number, spec in enumerate(specs, start=1):
            finished = spec["at"] or timezone.now()
            rows.append(
                RunAttempt(
                    run=locked,
                    number=number,
                    backend=spec["backend"] or backend,
                    model=spec["model"] or model,
                    succeeded=spec["succeeded"],
                    error="" if spec["succeeded"] else "boom",
                    http_status=spec["http_status"],
                    prompt_tokens=spec["prompt"],
                    completion_tokens=spec["completion"],
                    total_tokens=spec["prompt"] + spec["completion"],
                    usage_estimated=spec["estimated"],
                    latency_ms=spec["latency_ms"],
                    ttft_ms=10,
                    started_at=finished - timedelta(milliseconds=spec["latency_ms"] or 0),
                    finished_at=finished,
                )
            )
        result = CallResult(text="hi", finish_reason="stop" if status == "succeeded" else "")
        write_final(locked, Outcome(status, result, Target(backend, model), attempts=rows))
    run.refresh_from_db()
    return run
