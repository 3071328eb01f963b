"""Chat assistants a team builds: a backend and model, instructions and parameters.

Instructions come from one of three places: a prompt by label (follows
promotions: moving ``production`` changes what the assistant says next), a
prompt version pinned by number (never changes), or text written inline.
"""

from django.conf import settings
from django.db import models

from apps.teams.models import Team


class InstructionsSource(models.TextChoices):
    INLINE = "inline", "Written inline"
    LABEL = "label", "Prompt by label (follows promotions)"
    PINNED = "pinned", "Prompt version pinned"


class Assistant(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="assistants")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60)
    description = models.TextField(blank=True)
    backend = models.ForeignKey(
        "inference.Backend", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model = models.CharField(max_length=200, blank=True)
    fallbacks = models.JSONField(
        default=list, blank=True, help_text='[{"backend": id, "model": "..."}] tried in order.'
    )
    instructions_source = models.CharField(
        max_length=10, choices=InstructionsSource.choices, default=InstructionsSource.INLINE
    )
    instructions = models.TextField(blank=True, help_text="System instructions written inline.")
    prompt = models.ForeignKey(
        "prompts.Prompt", null=True, blank=True, on_delete=models.PROTECT, related_name="assistants"
    )
    prompt_label = models.CharField(max_length=40, blank=True)
    prompt_version = models.ForeignKey(
        "prompts.PromptVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="pinned_assistants",
    )
    temperature = models.FloatField(null=True, blank=True)
    top_p = models.FloatField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    stop = models.JSONField(default=list, blank=True)
    memory_messages = models.PositiveSmallIntegerField(
        default=20, help_text="How many past messages of a conversation are sent to the model."
    )
    tools = models.JSONField(
        default=list,
        blank=True,
        help_text="OpenAI function tools (JSON schema) passed to the model.",
    )
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

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    def parameters(self) -> dict:
        """The assistant's own model parameters; unset ones are left to the prompt's defaults."""
        params = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "stop": self.stop or None,
            "tools": self.tools or None,
        }
        return {k: v for k, v in params.items() if v is not None}
