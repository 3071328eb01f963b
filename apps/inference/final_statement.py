"""A claimed run's final write as one PostgreSQL statement.

What :func:`apps.inference.executor.write_final` writes when a run's worker
finishes it (the run's outcome, its attempts, their ledger rows, its final event)
took BEGIN, an UPDATE, three INSERTs and COMMIT: six round trips, each one a wait
for the database and then for the GIL among the worker's threads, on every model
call. Here they are the parts of one statement, which PostgreSQL runs atomically
without a transaction of ours:

    WITH run AS (UPDATE <run> ... WHERE id = .. AND claim_token = .. AND status = 'running'
                 RETURNING id),
         attempt AS (INSERT <attempts>, run_id = (SELECT id FROM run) RETURNING id, number),
         ledger AS (INSERT <records>, attempt_id = (SELECT id FROM attempt WHERE number = n)),
         event AS (INSERT <event>, subject = (SELECT 'run/..' FROM run))
    SELECT what each part returned

The claim guard is the UPDATE's: when another worker or the sweeper took the run,
``run`` is empty, so every other part gets a NULL where a value is required and
the statement fails as a whole; nothing is written, and :func:`write` says the
claim was lost. Values are built by the models' own fields (``apps.core.rows``),
so what is stored is what the other path stores.
"""

from contextlib import nullcontext

from django.db import IntegrityError, connection, transaction

from apps.core import rows
from apps.events import run_events, statement_events
from apps.events.models import OutboxEvent
from apps.inference.models import ChatRun, RunStatus
from apps.usage import ledger

_RUN_ID = ("(SELECT id FROM run)", [])


def write(run: ChatRun, fields: tuple[str, ...], attempts: list, token):
    """Write ``fields`` of the run and the rest of its end, if ``token`` still holds the
    claim: ``(ledger records, final event row or None)``, or None when the claim was lost."""
    update, params = rows.update_sql(run, fields, claim_token=token, status=RunStatus.RUNNING)
    parts = [f"run AS ({update} RETURNING id)"]
    selects = ["SELECT 'run', id, NULL::bigint FROM run"]
    records = ledger.build(run, attempts)
    if attempts:
        numbers = {
            id(record): attempt.number for record, attempt in zip(records, attempts, strict=True)
        }
        sql, more = rows.insert_sql(
            attempts, returning=("number",), given=lambda _attempt: {"run_id": _RUN_ID}
        )
        parts.append(f"attempt AS ({sql})")
        params += more
        sql, more = rows.insert_sql(
            records,
            returning=("attempt_id",),
            given=lambda record: {
                "attempt_id": ("(SELECT id FROM attempt WHERE number = %s)", [numbers[id(record)]])
            },
        )
        parts.append(f"ledger AS ({sql})")
        params += more
        selects += [
            "SELECT 'attempt', id, number FROM attempt",
            "SELECT 'ledger', id, attempt_id FROM ledger",
        ]
    event = run_events.finished_row(run, records)
    if event is not None:
        sql, more = statement_events.insert_sql(event, subject_sql="(SELECT %s FROM run)")
        parts.append(f"event AS ({sql})")
        params += more
        key = OutboxEvent._meta.pk.column  # an identifier from the model's metadata
        selects.append(f"SELECT 'event', {key}, NULL FROM event")  # noqa: S608
    statement = f"WITH {', '.join(parts)} {' UNION ALL '.join(selects)}"
    try:
        # a savepoint only inside a caller's transaction (tests): a refused statement
        # must not end it
        savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
        with savepoint, connection.cursor() as cursor:
            cursor.execute(statement, params)
            returned = cursor.fetchall()
    except IntegrityError:
        if _claim_holds(run, token):
            raise
        return None
    if not any(kind == "run" for kind, _id, _other in returned):
        return None
    _stored(run, attempts, records, event, returned)
    return records, event


def _claim_holds(run: ChatRun, token) -> bool:
    return ChatRun.objects.filter(pk=run.pk, claim_token=token, status=RunStatus.RUNNING).exists()


def _stored(run, attempts, records, event, returned) -> None:
    """Give the written objects the keys the statement returned, as an ORM save would."""
    attempt_ids = {number: pk for kind, pk, number in returned if kind == "attempt"}
    rows.inserted(attempts, [attempt_ids[attempt.number] for attempt in attempts])
    ledger_ids = {attempt_id: pk for kind, pk, attempt_id in returned if kind == "ledger"}
    for record, attempt in zip(records, attempts, strict=True):
        record.attempt_id = attempt.pk
    rows.inserted(records, [ledger_ids[attempt.pk] for attempt in attempts])
    if event is not None:
        (sequence,) = [pk for kind, pk, _other in returned if kind == "event"]
        rows.inserted([event], [sequence])
