"""The worker's half of a run: claim it, call backends, record the outcome once.

Exactly-once comes from the claim: a worker takes a run by writing a fresh
``claim_token`` under a row lock, and it may only finish the run while that
token is still on the row. A duplicate delivery finds the run running with a
fresh heartbeat (or finished) and does nothing; a run whose worker died has a
stale heartbeat and is taken over. Attempts and the final state are written in
one transaction, so usage is recorded once or not at all.

Policy: each target (the primary, then each fallback) gets its backend's
retries for retryable errors, with exponential backoff, full jitter and
``Retry-After`` honoured. Once a token has reached the caller nothing is
retried or falls back, because the caller would see the answer twice; the run
then keeps what was produced and its (estimated) usage.
"""

import contextlib
import functools
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from apps.core import rows
from apps.events import outbox, run_events
from apps.inference import feed, final_statement, tokens, worker_rows
from apps.inference.backends import BackendError, CallResult, Cancelled, client_for
from apps.inference.models import Backend, ChatRun, RunAttempt, RunStatus
from apps.inference.outcome import final_message
from apps.inference.relay import DeltaRelay
from apps.quotas import enforcement as quotas
from apps.usage import ledger as usage_ledger

logger = logging.getLogger(__name__)
MAX_RETRY_AFTER_SECONDS = 60
CANCEL_CHECK_SECONDS = 0.2
CANCELLED_BY_CALLER = "Cancelled by the caller."


def cancel_key(run_id: int) -> str:
    return f"run-cancel:{run_id}"


@dataclass
class Target:
    backend: Backend
    model: str


@dataclass
class Outcome:
    status: str
    result: CallResult
    target: Target | None
    error: str = ""
    error_code: str = ""
    attempts: list[RunAttempt] = field(default_factory=list)


def _release_connection() -> None:
    """A stream can last minutes: give the database connection back to the pool (shared
    by every stream of the process) while waiting on the backend. Not possible inside
    a transaction, where the run executes eagerly in tests."""
    if not connection.in_atomic_block:
        connection.close()


class LostClaim(Exception):
    """Another worker (or the sweeper) owns the run now; stop without writing."""


CLAIM_FIELDS = ("status", "claim_token", "heartbeat_at", "started_at", "deliveries")


@functools.cache
def _claim_queued_sql() -> str:
    """One UPDATE that takes a queued, uncancelled run and returns its row; on PostgreSQL
    the same statement writes its ``run.started`` (returned last: the event's sequence)."""
    meta = ChatRun._meta
    column = {name: meta.get_field(name).column for name in (*CLAIM_FIELDS, "cancel_requested_at")}
    # identifiers from the model's own metadata; every value is a parameter
    update = (
        f"UPDATE {meta.db_table} SET {column['status']} = %s, "  # noqa: S608
        f"{column['claim_token']} = %s, {column['heartbeat_at']} = %s, "
        f"{column['started_at']} = COALESCE({column['started_at']}, %s), "
        f"{column['deliveries']} = {column['deliveries']} + 1 "
        f"WHERE {meta.pk.column} = %s AND {column['status']} = %s "
        f"AND {column['cancel_requested_at']} IS NULL {rows.returning(ChatRun)}"
    )
    if connection.vendor != "postgresql":
        return update
    event = run_events.started_in_statement(ChatRun)
    return (
        f"WITH claimed AS ({update}), {event.sql('claimed')} "  # noqa: S608 - as above
        "SELECT claimed.*, event.sequence FROM claimed, event"
    )


def _claim_queued(run_id: int) -> tuple[ChatRun, uuid.UUID] | None:
    """The claim of almost every run: a queued one nobody cancelled, taken in one
    statement with its ``run.started`` (on PostgreSQL: no transaction of its own, no
    lock held across a round trip, no join), its team, backend and prompt version from
    the process's rows (:mod:`apps.inference.worker_rows`). None when the run is
    anything else: :func:`claim`'s locked read decides then."""
    token, now = uuid.uuid4(), timezone.now()
    meta = ChatRun._meta
    token_value = meta.get_field("claim_token").get_db_prep_value(token, connection)
    now_value = meta.get_field("heartbeat_at").get_db_prep_value(now, connection)
    params = [RunStatus.RUNNING, token_value, now_value, now_value, run_id, RunStatus.QUEUED]
    in_statement = connection.vendor == "postgresql"
    if in_statement:
        event = run_events.started_in_statement(ChatRun)
        event_params, event_row = event.params()
        params += event_params
    with contextlib.nullcontext() if in_statement else transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_claim_queued_sql(), params)
            row = cursor.fetchone()
        if row is None:
            return None
        run = rows.from_row(ChatRun, row[:-1] if in_statement else row)
        run.team = worker_rows.team(run.team_id)
        run.backend = worker_rows.backend(run.backend_id, team_id=run.team_id)
        if run.prompt_version_id is not None:
            run.prompt_version = worker_rows.prompt_version(run.prompt_version_id)
        if in_statement:
            event.written(event_row, row[-1], run)
        else:
            run_events.started(run)
    return run, token


def claim(run_id: int) -> tuple[ChatRun, uuid.UUID] | None:
    """Take the run for this worker, or None when it is finished or alive elsewhere."""
    claimed = _claim_queued(run_id)
    if claimed is not None:
        return claimed
    stale_before = timezone.now() - timedelta(seconds=settings.INFERENCE_STALE_SECONDS)
    with transaction.atomic():
        # what the call, the events and the final message need comes along
        try:  # get, not filter().first(): no ORDER BY, a third less CPU for the claim
            run = (
                ChatRun.objects.select_for_update(of=("self",))
                .select_related("team", "backend", "prompt_version")
                .get(pk=run_id)
            )
        except ChatRun.DoesNotExist:
            return None
        if run.is_finished:
            return None
        if run.status == RunStatus.RUNNING and run.heartbeat_at and run.heartbeat_at > stale_before:
            return None
        if run.cancel_requested_at:
            end_without_call(run, RunStatus.CANCELLED, CANCELLED_BY_CALLER, "cancelled")
            return None
        run.status = RunStatus.RUNNING
        run.claim_token = uuid.uuid4()
        run.heartbeat_at = timezone.now()
        run.started_at = run.started_at or run.heartbeat_at
        run.deliveries += 1
        run.save(update_fields=CLAIM_FIELDS)
        run_events.started(run)
        return run, run.claim_token


class _Watch:
    """Cheap cancellation and heartbeat checks, called between stream chunks."""

    def __init__(self, run_id: int, token: uuid.UUID):
        self.run_id, self.token = run_id, token
        # a cancel before the claim was seen by the claim itself
        self.next_cancel_check = time.monotonic() + CANCEL_CHECK_SECONDS
        self.next_heartbeat = time.monotonic() + settings.INFERENCE_HEARTBEAT_SECONDS
        self.cancelled = False

    def should_stop(self) -> bool:
        now = time.monotonic()
        if now >= self.next_cancel_check:
            self.next_cancel_check = now + CANCEL_CHECK_SECONDS
            self.cancelled = self.cancelled or bool(cache.get(cancel_key(self.run_id)))
        if now >= self.next_heartbeat:
            self.next_heartbeat = now + settings.INFERENCE_HEARTBEAT_SECONDS
            alive = ChatRun.objects.filter(
                pk=self.run_id, claim_token=self.token, status=RunStatus.RUNNING
            ).update(heartbeat_at=timezone.now())
            _release_connection()
            if not alive:
                raise LostClaim()
        return self.cancelled

    def sleep(self, seconds: float) -> None:
        """Back off, waking early when the run is cancelled."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.should_stop():
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


def _targets(run: ChatRun) -> list[Target]:
    targets = [Target(run.backend, run.model)]
    backend_ids = {f.get("backend") for f in run.fallbacks if f.get("backend")}
    backends = Backend.objects.in_bulk(backend_ids)
    for fallback in run.fallbacks:
        backend = backends.get(fallback.get("backend"), run.backend)
        targets.append(Target(backend, fallback.get("model") or run.model))
    return targets


def _backoff(retry: int, error: BackendError) -> float:
    base, cap = settings.INFERENCE_RETRY_BASE_SECONDS, settings.INFERENCE_RETRY_MAX_SECONDS
    delay = random.uniform(0, min(cap, base * 2**retry))  # noqa: S311 - jitter, not crypto
    if error.retry_after is not None:
        delay = max(delay, error.retry_after)
    return delay


def _usage(result: CallResult, messages: list[dict]) -> tuple[int, int, bool]:
    """Tokens of an attempt: as reported, else estimated; nothing when nothing was produced."""
    if result.usage_reported:
        return result.prompt_tokens, result.completion_tokens, False
    produced = result.text or result.tool_calls or result.finish_reason
    if not produced:
        return 0, 0, False
    completion_text = result.text + "".join(
        call["function"]["arguments"] for call in (result.tool_calls or [])
    )
    prompt = (
        result.prompt_tokens
        if result.prompt_tokens is not None
        else (tokens.estimate_messages_tokens(messages))
    )
    return prompt, tokens.estimate_tokens(completion_text), True


def _cached(result: CallResult, prompt: int) -> int | None:
    """Cached prompt tokens as reported, never more than the prompt itself."""
    if result.cached_tokens is None:
        return None
    return max(0, min(int(result.cached_tokens), prompt))


def _attempt(
    run: ChatRun,
    token,
    number: int,
    target: Target,
    result: CallResult,
    started,
    error: BackendError | None,
) -> RunAttempt:
    prompt, completion, estimated = _usage(result, run.messages)
    finished = timezone.now()
    return RunAttempt(
        run=run,
        claim_token=token,
        number=number,
        backend=target.backend,
        model=target.model,
        succeeded=error is None,
        error=error.message if error else "",
        http_status=error.status if error else None,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cached_tokens=None if estimated else _cached(result, prompt),
        usage_estimated=estimated,
        latency_ms=int((finished - started).total_seconds() * 1000),
        ttft_ms=result.ttft_ms,
        started_at=started,
        finished_at=finished,
    )


def _call(client, run: ChatRun, target: Target, watch: _Watch, deltas: DeltaRelay) -> CallResult:
    """Streamed from the backend only when someone reads the deltas."""
    if not deltas.live:
        return client.complete_chat(
            model=target.model,
            messages=run.messages,
            params=run.parameters,
            should_stop=watch.should_stop,
        )
    return client.stream_chat(
        model=target.model,
        messages=run.messages,
        params=run.parameters,
        on_delta=deltas.push,
        should_stop=watch.should_stop,
    )


def _call_targets(run: ChatRun, token: uuid.UUID, watch: _Watch, deltas: DeltaRelay) -> Outcome:
    attempts: list[RunAttempt] = []
    last_error: BackendError | None = None
    last_target: Target | None = None
    targets = _targets(run)
    for target in targets:
        last_target = target
        if not target.backend.enabled:
            last_error = BackendError(
                f"Backend {target.backend.name} is disabled.",
                retryable=False,
                code="backend_disabled",
            )
            continue
        for retry in range(target.backend.max_retries + 1):
            started = timezone.now()
            try:
                result = _call(client_for(target.backend), run, target, watch, deltas)
            except Cancelled as stop:
                attempts.append(
                    _attempt(
                        run,
                        token,
                        len(attempts) + 1,
                        target,
                        stop.partial,
                        started,
                        BackendError(CANCELLED_BY_CALLER, retryable=False, code="cancelled"),
                    )
                )
                return Outcome(
                    RunStatus.CANCELLED,
                    stop.partial,
                    target,
                    CANCELLED_BY_CALLER,
                    "cancelled",
                    attempts,
                )
            except BackendError as error:
                attempts.append(
                    _attempt(run, token, len(attempts) + 1, target, error.partial, started, error)
                )
                last_error = error
                if error.partial.emitted:
                    return Outcome(
                        RunStatus.FAILED, error.partial, target, error.message, error.code, attempts
                    )
                logger.info(
                    "backend attempt failed",
                    extra={
                        "run_id": run.pk,
                        "backend_id": target.backend.pk,
                        "model": target.model,
                        "code": error.code,
                        "status": error.status,
                        "retry": retry,
                    },
                )
                too_long = (error.retry_after or 0) > MAX_RETRY_AFTER_SECONDS
                if not error.retryable or too_long or retry == target.backend.max_retries:
                    break
                watch.sleep(_backoff(retry, error))
                if watch.cancelled:
                    return Outcome(
                        RunStatus.CANCELLED,
                        CallResult(),
                        target,
                        CANCELLED_BY_CALLER,
                        "cancelled",
                        attempts,
                    )
            else:
                attempts.append(
                    _attempt(run, token, len(attempts) + 1, target, result, started, None)
                )
                return Outcome(RunStatus.SUCCEEDED, result, target, attempts=attempts)
    message = last_error.message if last_error else "No backend could serve the run."
    if len(targets) > 1:
        message = f"All backends failed; last error: {message}"
    return Outcome(
        RunStatus.FAILED,
        last_error.partial if last_error else CallResult(),
        last_target,
        message,
        last_error.code if last_error else "no_backend",
        attempts,
    )


FINAL_FIELDS = (
    "status",
    "output",
    "tool_calls",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "usage_estimated",
    "ttft_ms",
    "error",
    "error_code",
    "served_backend",
    "served_model",
    "finished_at",
    "latency_ms",
    "heartbeat_at",
)


def write_final(
    run: ChatRun,
    outcome: Outcome,
    reply: feed.Reply | None = None,
    *,
    claim_token: uuid.UUID | None = None,
) -> bool:
    """Store the outcome on the run and announce it after commit: the caller's answer
    first, then the quota settlement, then the events.

    The run is either locked by the caller (call inside that transaction), or
    (``claim_token``) the one the claim read: then the write is guarded by the token,
    and False (nothing written) means another worker or the sweeper took the run
    meanwhile. On PostgreSQL that write is one statement
    (:mod:`apps.inference.final_statement`) that needs no transaction; elsewhere, call
    inside one. Only the outcome's columns are written, never the request's (messages
    can be large)."""
    result = outcome.result
    now = timezone.now()
    successful_or_last = outcome.attempts[-1] if outcome.attempts else None
    run.status = outcome.status
    run.output = result.text
    run.tool_calls = result.tool_calls
    run.finish_reason = result.finish_reason or (
        "cancelled" if outcome.status == "cancelled" else ""
    )
    if successful_or_last is not None:
        run.prompt_tokens = successful_or_last.prompt_tokens
        run.completion_tokens = successful_or_last.completion_tokens
        run.total_tokens = successful_or_last.total_tokens
        run.cached_tokens = successful_or_last.cached_tokens
        run.usage_estimated = successful_or_last.usage_estimated
        run.ttft_ms = successful_or_last.ttft_ms
    run.error, run.error_code = outcome.error, outcome.error_code
    if outcome.target is not None:
        run.served_backend, run.served_model = outcome.target.backend, outcome.target.model
    run.finished_at = now
    if run.started_at:
        run.latency_ms = int((now - run.started_at).total_seconds() * 1000)
    run.heartbeat_at = None
    if claim_token is not None and connection.vendor == "postgresql":
        written = final_statement.write(run, FINAL_FIELDS, outcome.attempts, claim_token)
        if written is None:
            return False
        records, event = written
        _announce(run, records, reply)
        if event is not None:
            outbox.written(event)
        return True
    if claim_token is None:
        run.save(update_fields=FINAL_FIELDS)
    elif not rows.update(run, FINAL_FIELDS, claim_token=claim_token, status=RunStatus.RUNNING):
        return False
    rows.insert(outcome.attempts)
    # billed once: the quota settlement and the event read the same records
    records = usage_ledger.record(run, outcome.attempts)
    _announce(run, records, reply)
    run_events.finished(run, records)
    return True


def _announce(run: ChatRun, records, reply: feed.Reply | None) -> None:
    """Once the end is committed: the caller's answer first, then the quota settlement
    (the event's hand-off follows it)."""
    final = final_message(run, records)
    transaction.on_commit(lambda: feed.publish(run.pk, final, reply=reply))
    quotas.settle_run(run, records)


def end_without_call(
    run: ChatRun, status: str, error: str = "", code: str = "", reply: feed.Reply | None = None
) -> None:
    """Finish a (locked) run that no backend call will finish: cancelled before a
    worker took it, given up by the sweeper, or stopped by an error of the portal.
    The same final write as a called run: state, ledger (nothing), event, reply."""
    write_final(run, Outcome(status, CallResult(), None, error, code), reply)


def execute(run_id: int, reply: feed.Reply | None = None) -> str:
    """Run it if this worker can claim it; returns what happened, for logs and tests.
    ``reply``: where the run's caller waits (see :mod:`apps.inference.feed`)."""
    claimed = claim(run_id)
    if claimed is None:
        return "skipped"
    run, token = claimed
    try:
        return _execute_claimed(run, token, reply)
    except Exception:
        logger.exception("run failed inside the portal", extra={"run_id": run.pk})
        fail_unfinished(run.pk, token=token, reply=reply)
        raise


def _execute_claimed(run: ChatRun, token: uuid.UUID, reply: feed.Reply | None) -> str:
    _release_connection()
    watch = _Watch(run.pk, token)
    deltas = DeltaRelay(run.pk, reply)
    try:
        outcome = _call_targets(run, token, watch, deltas)
    except LostClaim:
        return "lost-claim"
    deltas.flush()
    # one statement on PostgreSQL (apps/inference/final_statement.py): no transaction
    # of its own there; elsewhere the writes share this one
    with contextlib.nullcontext() if connection.vendor == "postgresql" else transaction.atomic():
        if not write_final(run, outcome, reply, claim_token=token):
            return "lost-claim"
    deltas.forget()  # the stored output is the truth now
    if watch.cancelled:
        cache.delete(cancel_key(run.pk))
    return outcome.status


INTERNAL_ERROR = "The run stopped on an internal error of the portal; please try again."


def fail_unfinished(
    run_id: int,
    *,
    token: uuid.UUID | None = None,
    attempts: int = 5,
    reply: feed.Reply | None = None,
) -> bool:
    """Fail a run whose execution died on an error of the portal's own (the database
    refusing a write, a bug), so no caller, page or quota waits on a run that nobody
    will finish. With ``token`` only the claim that holds it may do so; without one,
    only a run still queued (the task died before claiming it). Retried, because the
    error that killed the run (SQLite busy, a dropped connection) may still be there."""
    for attempt in range(attempts):
        try:
            with transaction.atomic():
                run = ChatRun.objects.select_for_update().filter(pk=run_id).first()
                if run is None or run.is_finished:
                    return False
                ours = run.claim_token == token if token else run.status == RunStatus.QUEUED
                if not ours:
                    return False
                end_without_call(run, RunStatus.FAILED, INTERNAL_ERROR, "internal", reply)
                return True
        except Exception:
            logger.exception("could not fail the run", extra={"run_id": run_id})
            _release_connection()
            time.sleep(min(2.0, 0.1 * 2**attempt))
    return False
