"""Quotas a team's admins set, their temporary increases, and threshold alerts.

A ``Quota`` is for the whole team (``api_key`` empty) or for one API key; a run
is held to both. The counters it is enforced with live in Redis (see
``store``); these rows hold the limits, and PostgreSQL's runs and attempts stay
the truth the counters are reconciled against.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.teams.models import Team


class Period(models.TextChoices):
    DAY = "day", "Day"
    MONTH = "month", "Calendar month"


class Metric(models.TextChoices):
    TOKENS = "tokens", "Token budget"
    COST = "cost", "Cost budget"


DEFAULT_THRESHOLDS = [80, 100]


def _default_thresholds() -> list[int]:
    return list(DEFAULT_THRESHOLDS)


class Quota(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="quotas")
    api_key = models.ForeignKey(
        "keys.ApiKey",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="quotas",
        help_text="Empty: the whole team. Otherwise only this key's runs count.",
    )
    period = models.CharField(
        max_length=5,
        choices=Period.choices,
        default=Period.MONTH,
        help_text="Budgets reset at the start of each period in the team's time zone.",
    )
    token_budget = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Tokens per period; empty: no token budget."
    )
    cost_budget = models.DecimalField(
        max_digits=16,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Cost per period in the price list's currency; empty: no cost budget.",
    )
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveBigIntegerField(null=True, blank=True)
    max_concurrent_runs = models.PositiveIntegerField(null=True, blank=True)
    thresholds = models.JSONField(
        default=_default_thresholds,
        blank=True,
        help_text="Percentages of a budget that send an alert once per period, e.g. [80, 100].",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team", "api_key_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["team"],
                condition=models.Q(api_key__isnull=True),
                name="quotas_one_team_quota",
            ),
            models.UniqueConstraint(
                fields=["team", "api_key"],
                condition=models.Q(api_key__isnull=False),
                name="quotas_one_quota_per_key",
            ),
        ]

    def __str__(self) -> str:
        return f"Quota of {self.scope_label} ({self.team})"

    @property
    def scope(self) -> str:
        return "key" if self.api_key_id else "team"

    @property
    def scope_label(self) -> str:
        if self.api_key_id:
            return f"key {self.api_key.prefix}…" if self.api_key else f"key {self.api_key_id}"
        return "the team"


class QuotaIncrease(models.Model):
    """Extra allowance on top of a quota until ``ends_at`` (a launch, an incident)."""

    quota = models.ForeignKey(Quota, on_delete=models.CASCADE, related_name="increases")
    extra_tokens = models.PositiveBigIntegerField(default=0)
    extra_cost = models.DecimalField(max_digits=16, decimal_places=6, default=0)
    extra_requests_per_minute = models.PositiveIntegerField(default=0)
    extra_tokens_per_minute = models.PositiveBigIntegerField(default=0)
    extra_concurrent_runs = models.PositiveIntegerField(default=0)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-ends_at"]
        indexes = [models.Index(fields=["quota", "ends_at"], name="quotas_increase_active")]

    def __str__(self) -> str:
        return f"Increase of {self.quota} until {self.ends_at:%Y-%m-%d %H:%M}"

    def is_active(self, at=None) -> bool:
        at = at or timezone.now()
        return self.starts_at <= at < self.ends_at


class QuotaAlert(models.Model):
    """A threshold crossed in a period: written once (the unique constraint is the
    "once"), e-mailed by a task, and later published by the event outbox, which is
    why it carries the numbers and ``published_at`` rather than pointing at counters
    that will have moved on."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="quota_alerts")
    quota = models.ForeignKey(Quota, on_delete=models.CASCADE, related_name="alerts")
    period = models.CharField(max_length=10, help_text="2025-06 or 2025-06-14.")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    metric = models.CharField(max_length=6, choices=Metric.choices)
    threshold = models.PositiveSmallIntegerField(help_text="Percent of the budget.")
    consumed = models.DecimalField(max_digits=24, decimal_places=6)
    limit = models.DecimalField(max_digits=24, decimal_places=6)
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(
        null=True, blank=True, help_text="When the event bus took it; empty until then."
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["quota", "period", "metric", "threshold"], name="quotas_alert_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.threshold}% of {self.metric} for {self.quota} in {self.period}"

    def event_payload(self) -> dict:
        """What the event bus will publish (key: the team id)."""
        return {
            "type": "quota.threshold_crossed",
            "alert_id": self.pk,
            "team_id": self.team_id,
            "quota_id": self.quota_id,
            "api_key_id": self.quota.api_key_id,
            "period": self.period,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "metric": self.metric,
            "threshold": self.threshold,
            "consumed": str(self.consumed),
            "limit": str(self.limit),
            "at": self.created_at.isoformat(),
        }
