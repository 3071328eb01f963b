"""Chat assistants a team builds. The prompt, backend and parameter fields arrive
with the prompts and inference work; this is the part every later piece hangs on."""

from django.conf import settings
from django.db import models

from apps.teams.models import Team


class Assistant(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="assistants")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60)
    description = models.TextField(blank=True)
    instructions = models.TextField(blank=True, help_text="System instructions written inline.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "slug"], name="assistants_slug_unique_in_team")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.team.slug})"
