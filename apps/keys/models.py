"""Team API keys and the team's key policy.

A key is ``aip_<public_id>_<secret>``. Only the public id and an HMAC of the
secret are stored; the raw key is shown once, when it is created or rotated.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.teams.models import Team


class Scope(models.TextChoices):
    CHAT = "chat", "Chat (use assistants)"
    READ = "read", "Read"
    WRITE = "write", "Write"
    ADMIN = "admin", "Admin"


class KeyStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class ApiKey(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    public_id = models.CharField(max_length=12, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    previous_secret_hash = models.CharField(max_length=64, blank=True, editable=False)
    previous_valid_until = models.DateTimeField(null=True, blank=True, editable=False)
    scopes = models.JSONField(default=list)
    assistant = models.ForeignKey(
        "assistants.Assistant",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="api_keys",
    )
    allowed_models = models.JSONField(default=list, blank=True)
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def prefix(self) -> str:
        """What may be shown of the key: everything before the secret."""
        return f"aip_{self.public_id}_"

    @property
    def status(self) -> str:
        if self.revoked_at:
            return KeyStatus.REVOKED
        if self.expires_at and self.expires_at <= timezone.now():
            return KeyStatus.EXPIRED
        return KeyStatus.ACTIVE


class KeyPolicy(models.Model):
    """Per-team rules for keys; kept here rather than on Team."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="key_policy")
    max_lifetime_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Keys must expire within this many days; empty: no limit."
    )

    class Meta:
        verbose_name = "API key policy"
        verbose_name_plural = "API key policies"

    def __str__(self) -> str:
        return f"Key policy of {self.team}"
