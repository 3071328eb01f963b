"""The ledger folded into the rollups in batches, and the unfolded tail reads add.

Workers only insert ledger rows; beat's ``fold_usage_rollups`` (every couple of
seconds) adds them to the rollups and moves a watermark (``FoldWatermark``) in
the same transaction, so every row is folded exactly once:

- Folders queue on the watermark's row lock (``SELECT ... FOR UPDATE``): a
  second folder starts where the first committed.
- A row's position is its writing transaction's id (``txid``, PostgreSQL). Ids
  from the sequence would not do: a worker's transaction can take id 100, the
  next one 101 and commit first; a folder that then saw 101 and moved past it
  would never fold 100. ``horizon()`` is the lowest transaction of this database
  that could still commit, so every row below it is either visible or gone for
  good. On SQLite, one writer at a time commits ids in order, so the id is the
  position.
- Reads (``exact``) take the rollups plus the rows at or above the watermark,
  and check that no fold committed in between; the usage page, the API and the
  exports are exact to the ledger whether or not beat has caught up (the
  embedded default has no beat at all and stays exact).

A transaction left open for long (by anything writing to this database) holds
the horizon back: rows wait in the tail, which reads still count, and fold when
it ends.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.teams.models import Team
from apps.usage import rollups
from apps.usage.models import FoldWatermark, UsageRecord

WATERMARK = 1
# Rows per fold transaction: big enough that a burst folds in a few statements,
# small enough that the watermark lock and the rollup rows are held briefly.
BATCH_SIZE = 5000
MAX_BATCHES = 40
# Reads retried when a fold committed while they ran; then they hold folds off.
EXACT_ATTEMPTS = 3

# What summing a ledger row needs (``rollups.Sums.add``, ``rollups.dimensions``).
TAIL_FIELDS = (
    "team_id",
    "model",
    "assistant_id",
    "prompt_version_id",
    "api_key_id",
    "status",
    "usage_estimated",
    "unpriced",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cost",
    "latency_ms",
    "occurred_at",
)


def _by_transaction() -> bool:
    return connection.vendor == "postgresql"


def unfolded(position: int) -> Q:
    """Ledger rows not in the rollups yet, for a watermark at ``position``."""
    return Q(txid__gte=position) if _by_transaction() else Q(id__gte=position)


def folded(position: int) -> Q:
    """Ledger rows already in the rollups (rows from before folding have no txid)."""
    if _by_transaction():
        return Q(txid__lt=position) | Q(txid__isnull=True)
    return Q(id__lt=position)


@dataclass(frozen=True)
class Mark:
    position: int = 0
    folds: int = 0


def read_mark() -> Mark:
    row = FoldWatermark.objects.filter(pk=WATERMARK).values_list("position", "folds").first()
    return Mark(*row) if row else Mark()


def exact[T](read: Callable[[int], T]) -> T:
    """``read(position)`` reads rollups and ``tail(position)``; its answer is kept
    only if no fold committed meanwhile (the watermark's ``folds`` is the same
    before and after), else read again. Each statement sees the latest commits,
    so without the check a fold landing between the rollup query and the tail
    query would count a batch twice or not at all."""
    for _ in range(EXACT_ATTEMPTS):
        mark = read_mark()
        answer = read(mark.position)
        if read_mark().folds == mark.folds:
            return answer
    with transaction.atomic():  # folds are rare; this one waits for the read
        position = (
            FoldWatermark.objects.select_for_update()
            .filter(pk=WATERMARK)
            .values_list("position", flat=True)
            .first()
        )
        return read(position or 0)


def tail(team, position: int, *, since=None, until=None, filters=None, fields=TAIL_FIELDS):
    """The team's ledger rows not folded yet (``occurred_at`` in [since, until)), as
    named tuples with ``fields``. Normally a few seconds of traffic, read through
    the fold index."""
    rows = UsageRecord.objects.filter(unfolded(position), team=team)
    if since is not None:
        rows = rows.filter(occurred_at__gte=since)
    if until is not None:
        rows = rows.filter(occurred_at__lt=until)
    if filters is not None:
        rows = rows.filter(**filters.lookups())
    return list(rows.order_by().values_list(*fields, named=True))


def fold(*, batch_size: int = BATCH_SIZE, max_batches: int = MAX_BATCHES) -> int:
    """Fold what the ledger holds beyond the watermark, a transaction per batch.
    Returns how many ledger rows went into the rollups."""
    total = 0
    for _ in range(max_batches):
        count, more = _fold_batch(batch_size)
        total += count
        if not more:
            break
    return total


def _fold_batch(batch_size: int) -> tuple[int, bool]:
    fields = ("id", "txid", *TAIL_FIELDS)
    with transaction.atomic():
        mark = _locked_mark()
        if _by_transaction():
            limit = horizon()
            pending = UsageRecord.objects.filter(txid__gte=mark.position, txid__lt=limit)
            ordered = pending.order_by("txid", "id").values_list(*fields, named=True)
            rows = list(ordered[:batch_size])
            more = len(rows) == batch_size
            if more:
                # a transaction's rows fold together: the watermark is a transaction id
                last = rows[-1]
                rest = pending.filter(txid=last.txid, id__gt=last.id).order_by("id")
                rows += rest.values_list(*fields, named=True)
                position = last.txid + 1
            else:
                position = max(limit, mark.position)
        else:
            pending = UsageRecord.objects.filter(id__gte=mark.position).order_by("id")
            rows = list(pending.values_list(*fields, named=True)[:batch_size])
            more = len(rows) == batch_size
            position = rows[-1].id + 1 if rows else mark.position
        if rows:
            rollups.add_records(rows, _zones({row.team_id for row in rows}))
        if rows or position != mark.position:
            # ``folds`` moves only with the rollups: a watermark moving over a range
            # no row can ever appear in changes no reader's answer.
            FoldWatermark.objects.filter(pk=WATERMARK).update(
                position=position,
                folds=F("folds") + (1 if rows else 0),
                folded_at=timezone.now(),
            )
    return len(rows), more


def _locked_mark() -> Mark:
    locked = FoldWatermark.objects.select_for_update().filter(pk=WATERMARK)
    row = locked.values_list("position", "folds").first()
    if row is None:  # a database emptied by tests; the migration makes the row
        FoldWatermark.objects.bulk_create([FoldWatermark(pk=WATERMARK)], ignore_conflicts=True)
        row = locked.values_list("position", "folds").get()
    return Mark(*row)


def _zones(team_ids) -> dict:
    """Each team's clock now: rows fold into the hours and days it shows."""
    zones = {team.pk: team.zone for team in Team.objects.filter(pk__in=team_ids).only("time_zone")}
    return {pk: zones.get(pk, UTC) for pk in team_ids}


XID_SPAN = 2**32


def horizon() -> int:
    """The lowest transaction id (64-bit) of this database that could still commit
    ledger rows: every row with a lower ``txid`` is committed or rolled back (or
    this transaction's own), so it can be folded and the watermark moved past it.

    The snapshot's xmin would be simpler but counts every database of the server
    (another application's long transaction would stall folding) and this
    transaction itself. So: an upper bound below which every id has been handed
    out (this transaction's own id, or the snapshot's xmax if later ones have
    finished), lowered to any other transaction still open in this database.
    ``pg_stat_activity`` and ``pg_prepared_xacts`` give those as 32-bit ids,
    widened against the bound (no open transaction is 2^31 ids old: PostgreSQL
    stops before that; a wider gap means it started after the bound). Their
    per-transaction cache is cleared first, so a fold inside a long transaction
    (tests) sees who is open now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pg_current_xact_id()::text::bigint, "
            "pg_snapshot_xmax(pg_current_snapshot())::text::bigint, "
            "ARRAY(SELECT backend_xid::text::bigint FROM pg_stat_activity "
            "      WHERE datname = current_database() AND backend_xid IS NOT NULL "
            "      AND pid <> pg_backend_pid()), "
            "ARRAY(SELECT transaction::text::bigint FROM pg_prepared_xacts "
            "      WHERE database = current_database())"
        )
        own, xmax, running, prepared = cursor.fetchone()
    bound = max(own + 1, xmax)
    limit = bound
    for xid in (*running, *prepared):
        behind = (bound - xid) % XID_SPAN
        if 0 < behind <= XID_SPAN // 2:
            limit = min(limit, bound - behind)
    return limit
