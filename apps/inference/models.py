"""Inference backends, and runs: one request for a chat completion and its attempts.

A run is the unit every caller (playground, REST API, gateway) creates and
reads; only Celery workers talk to backends. Each call to a backend is a
``RunAttempt``, the record usage and cost accounting build on.
"""

import uuid

from django.conf import settings
from django.db import models

from apps.assistants.models import Assistant
from apps.teams.models import Team


class BackendKind(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    AZURE_OPENAI = "azure_openai", "Azure OpenAI"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible server (NIM, vLLM, Ollama, ...)"
    LOCAL = "local", "Local development backend (not a model)"


class Backend(models.Model):
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="backends",
        help_text="Empty for a global backend every team may use (staff only).",
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=32, choices=BackendKind.choices)
    base_url = models.URLField(
        blank=True, help_text="For OpenAI-compatible servers, ending in /v1."
    )
    azure_endpoint = models.URLField(blank=True)
    azure_deployment = models.CharField(max_length=200, blank=True)
    api_version = models.CharField(max_length=40, blank=True)
    api_key_encrypted = models.TextField(blank=True, editable=False)
    api_key_last4 = models.CharField(max_length=4, blank=True, editable=False)
    model_ids = models.JSONField(
        default=list, blank=True, help_text="Model ids this backend serves."
    )
    models_fetched_at = models.DateTimeField(null=True, blank=True)
    timeout_seconds = models.FloatField(default=60)
    max_retries = models.PositiveSmallIntegerField(default=3)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="inference_backend_name_in_team"),
            models.UniqueConstraint(
                fields=["name"],
                condition=models.Q(team__isnull=True),
                name="inference_global_backend_name",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def is_global(self) -> bool:
        return self.team_id is None

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted)


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


TERMINAL_STATUSES = {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}


class ChatRun(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="runs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(
        "keys.ApiKey",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        help_text="The key that asked, when a program did rather than a signed-in user.",
    )
    end_user = models.CharField(
        max_length=256, blank=True, help_text="The gateway caller's `user` field, as given."
    )
    assistant = models.ForeignKey(
        Assistant, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    prompt_version = models.ForeignKey(
        "prompts.PromptVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
    )
    backend = models.ForeignKey(Backend, on_delete=models.PROTECT, related_name="runs")
    model = models.CharField(max_length=200)
    messages = models.JSONField()
    parameters = models.JSONField(default=dict, blank=True)
    fallbacks = models.JSONField(
        default=list, blank=True, help_text='[{"backend": id, "model": "..."}] tried in order.'
    )
    status = models.CharField(
        max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    output = models.TextField(blank=True)
    tool_calls = models.JSONField(null=True, blank=True)
    finish_reason = models.CharField(max_length=32, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    total_tokens = models.PositiveIntegerField(null=True, blank=True)
    cached_tokens = models.PositiveIntegerField(null=True, blank=True)  # of prompt_tokens
    usage_estimated = models.BooleanField(default=False)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    served_backend = models.ForeignKey(
        Backend, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    served_model = models.CharField(max_length=200, blank=True)
    deliveries = models.PositiveSmallIntegerField(
        default=0, help_text="How many times a worker has claimed this run."
    )
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    quota_reservation = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="What apps.quotas reserved for the run; settled when it ends.",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the run was last handed to the queue."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["team", "-created_at"], name="inference_run_team_recent")]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


class RunAttempt(models.Model):
    """One call to one backend for a run, written once when the call ends."""

    run = models.ForeignKey(ChatRun, on_delete=models.CASCADE, related_name="attempts")
    claim_token = models.UUIDField(default=uuid.uuid4)
    number = models.PositiveSmallIntegerField()
    backend = models.ForeignKey(Backend, null=True, on_delete=models.SET_NULL, related_name="+")
    model = models.CharField(max_length=200)
    succeeded = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    # Prompt tokens the backend served from its prompt cache (billed at the cached
    # price), as reported; null when it reports none (then none are assumed).
    cached_tokens = models.PositiveIntegerField(null=True, blank=True)
    usage_estimated = models.BooleanField(default=False)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    class Meta:
        ordering = ["run", "claim_token", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "claim_token", "number"], name="inference_attempt_once"
            )
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of run {self.run_id}"
