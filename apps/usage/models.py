"""Prices, the usage ledger (one row per backend attempt) and its rollups.

The ledger is the truth and may be pruned (``USAGE_RETENTION_DAYS``); the
rollups are folded from it in batches (``folding``), off the worker's hot path,
and never pruned. Reads add the ledger rows not folded yet, so they are exact.
Cost is stored on every row when it is written, so a later price change never
rewrites the past.
"""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.expressions import Expression
from django.utils import timezone

from apps.teams.models import Team

# Prices are per million tokens with at most 6 decimal places, so the cost of a
# whole number of tokens is exact at 12 places: no rounding in records or rollups.
PRICE_DIGITS = {"max_digits": 14, "decimal_places": 6}
COST_DIGITS = {"max_digits": 22, "decimal_places": 12}
ROLLUP_COST_DIGITS = {"max_digits": 28, "decimal_places": 12}

# Upper bounds (ms) of the latency histogram kept on every rollup row; the last
# bucket is open-ended. p50/p95 over any range are read from the summed counts.
LATENCY_BOUNDS_MS = (
    50,
    100,
    200,
    300,
    500,
    750,
    1000,
    1500,
    2000,
    3000,
    5000,
    7500,
    10000,
    15000,
    30000,
    60000,
)
LATENCY_FIELDS = tuple(f"lat_{i:02d}" for i in range(len(LATENCY_BOUNDS_MS) + 1))


class Price(models.Model):
    """The price of one model from ``effective_from`` until a newer row takes over.

    Global rows (no team, no backend) apply everywhere; a team's row for one of its
    own backends overrides them. Rows are never edited in place: a change is a new
    row with a later ``effective_from``.
    """

    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="prices",
        help_text="Empty for a global price; set for a team's override.",
    )
    backend = models.ForeignKey(
        "inference.Backend",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="prices",
        help_text="The backend the override applies to; empty for any backend.",
    )
    model = models.CharField(max_length=200, db_index=True)
    input_per_million = models.DecimalField(
        **PRICE_DIGITS, validators=[MinValueValidator(0)], help_text="Per 1M prompt tokens."
    )
    output_per_million = models.DecimalField(
        **PRICE_DIGITS, validators=[MinValueValidator(0)], help_text="Per 1M completion tokens."
    )
    cached_input_per_million = models.DecimalField(
        **PRICE_DIGITS,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Per 1M cached prompt tokens; empty bills them at the input price.",
    )
    effective_from = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "-effective_from"]
        constraints = [
            # One row per scope, model and start (NULLs never collide in a plain
            # unique index, and SQLite has no NULLS NOT DISTINCT).
            models.UniqueConstraint(
                fields=["model", "effective_from"],
                condition=models.Q(team__isnull=True, backend__isnull=True),
                name="usage_price_once_global",
            ),
            models.UniqueConstraint(
                fields=["backend", "model", "effective_from"],
                condition=models.Q(team__isnull=True, backend__isnull=False),
                name="usage_price_once_global_backend",
            ),
            models.UniqueConstraint(
                fields=["team", "backend", "model", "effective_from"],
                condition=models.Q(team__isnull=False),
                name="usage_price_once_in_team",
            ),
            models.CheckConstraint(
                condition=models.Q(team__isnull=True) | models.Q(backend__isnull=False),
                name="usage_price_override_names_backend",
            ),
        ]
        indexes = [models.Index(fields=["model", "-effective_from"], name="usage_price_lookup")]

    def __str__(self) -> str:
        scope = f"{self.team} / {self.backend}" if self.team_id else "global"
        return f"{self.model} ({scope}) from {self.effective_from:%Y-%m-%d %H:%M}"

    @property
    def scope(self) -> str:
        return "team" if self.team_id else "global"


class CurrentTransactionId(Expression):
    """The inserting transaction's 64-bit id on PostgreSQL, as an inserted value.

    Ledger ids come from a sequence when a row is inserted, but transactions commit
    in another order, so "every id below N is folded" would skip a row whose
    transaction was still open. Transaction ids tell the folder which writers can
    still commit (``folding.horizon``). SQLite has one writer at a time, so its ids
    are already in commit order: there the column stays NULL and the folder orders
    by id.
    """

    allowed_default = True
    output_field = models.BigIntegerField()

    def as_sql(self, compiler, connection, **extra_context):
        return "NULL", []

    def as_postgresql(self, compiler, connection, **extra_context):
        return "(pg_current_xact_id()::text::bigint)", []


class AttemptStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class UsageRecord(models.Model):
    """One backend attempt as billed. Written with the run's final state, once."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="usage_records")
    run = models.ForeignKey(
        "inference.ChatRun", null=True, on_delete=models.SET_NULL, related_name="usage_records"
    )
    attempt = models.OneToOneField(
        "inference.RunAttempt",
        null=True,
        on_delete=models.SET_NULL,
        related_name="usage_record",
        help_text="Unique: an attempt is billed at most once.",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(
        "keys.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assistant = models.ForeignKey(
        "assistants.Assistant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    prompt_version = models.ForeignKey(
        "prompts.PromptVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    backend = models.ForeignKey(
        "inference.Backend", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    model = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=AttemptStatus.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty when the backend doesn't report it."
    )
    usage_estimated = models.BooleanField(default=False)
    cost = models.DecimalField(**COST_DIGITS, default=0)
    unpriced = models.BooleanField(default=False, help_text="No price applied: cost is 0.")
    price = models.ForeignKey(Price, null=True, blank=True, on_delete=models.SET_NULL)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField(help_text="When the attempt ended.")
    # Set by the ledger on insert (``txid=CurrentTransactionId()``), not a column default:
    # rows that workers of the release before folding write during an upgrade (they
    # still upsert rollups themselves) stay NULL, so they are never folded twice.
    txid = models.BigIntegerField(
        null=True,
        editable=False,
        help_text="The writing transaction (PostgreSQL): what folding into rollups orders by. "
        "Empty on rows folded before folding existed, and on SQLite.",
    )

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        indexes = [
            # the folder and the readers' unfolded tail: a range at the end of it
            models.Index(
                fields=["txid"], name="usage_record_fold", condition=models.Q(txid__isnull=False)
            ),
            models.Index(fields=["team", "-occurred_at", "-id"], name="usage_record_team_time"),
            models.Index(fields=["occurred_at"], name="usage_record_time"),
            # the records list and CSV export filter by one of these and page by time;
            # without them a rare value scans the team's whole time index
            models.Index(
                fields=["team", "assistant", "-occurred_at", "-id"], name="usage_record_assistant"
            ),
            models.Index(
                fields=["team", "api_key", "-occurred_at", "-id"], name="usage_record_key"
            ),
            models.Index(
                fields=["team", "prompt_version", "-occurred_at", "-id"], name="usage_record_prompt"
            ),
            models.Index(
                fields=["team", "model", "-occurred_at", "-id"], name="usage_record_model"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model}: {self.total_tokens} tokens, {self.cost}"


class FoldWatermark(models.Model):
    """How far the ledger has been folded into the rollups: one row (pk 1).

    Every ledger row whose position (``txid`` on PostgreSQL, ``id`` on SQLite) is
    below ``position`` is in the rollups, every row at or above it is not: reads
    add those to the rollups. ``folds`` changes in the same transaction as the
    rollups, so a reader that sees the same value before and after its queries
    read rollups and tail as of one moment.
    """

    position = models.BigIntegerField(default=0)
    folds = models.BigIntegerField(default=0)
    folded_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"folded below {self.position} ({self.folds} folds)"


class Rollup(models.Model):
    """Sums over one time bucket and one combination of dimensions.

    Dimensions are plain ids with 0 for "none" (not foreign keys): the conflict
    target of the upsert must never be NULL, and the numbers must outlive a
    deleted assistant or key.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    model = models.CharField(max_length=200)
    assistant_id = models.BigIntegerField(default=0)
    prompt_version_id = models.BigIntegerField(default=0)
    api_key_id = models.BigIntegerField(default=0)
    requests = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)
    estimated = models.PositiveBigIntegerField(default=0, help_text="Estimated-usage requests.")
    unpriced = models.PositiveBigIntegerField(
        default=0, help_text="Requests billed at 0, unpriced."
    )
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    total_tokens = models.PositiveBigIntegerField(default=0)
    cached_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(**ROLLUP_COST_DIGITS, default=0)
    latency_count = models.PositiveBigIntegerField(default=0)
    latency_sum_ms = models.PositiveBigIntegerField(default=0)

    class Meta:
        abstract = True


for _name in LATENCY_FIELDS:
    Rollup.add_to_class(_name, models.PositiveBigIntegerField(default=0))

DIMENSIONS = ("model", "assistant_id", "prompt_version_id", "api_key_id")


class HourlyRollup(Rollup):
    """Per hour of the team's clock (the instant it starts), for ranges of a day or two."""

    bucket = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "bucket", *DIMENSIONS], name="usage_hourly_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:%M} {self.model}: {self.requests} requests"


class DailyRollup(Rollup):
    """Per date in the team's time zone as it was when the usage happened."""

    bucket = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "bucket", *DIMENSIONS], name="usage_daily_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.bucket} {self.model}: {self.requests} requests"
