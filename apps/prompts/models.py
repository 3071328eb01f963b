"""The prompt library: prompts, their immutable versions, and labels pointing at versions.

A version never changes once written, so a run, a diff or an audit that names
"version 7" always means the same text. Callers that want "whatever is live"
go through a label (``production``, ``staging``...), and every move of a label
is kept in ``LabelMove`` so a bad deploy can be traced and rolled back.
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from apps.teams.models import Team

LABEL_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
LABEL_MAX_LENGTH = 40
# The API serves the move history at .../labels/history, so no label may be called that.
RESERVED_LABELS = frozenset({"history"})
label_validator = RegexValidator(
    LABEL_PATTERN,
    "Label names use lowercase letters, digits, - and _ (at most 40, starting with a "
    "letter or digit).",
)


class MessageRole(models.TextChoices):
    SYSTEM = "system", "System"
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"


class Prompt(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="prompts")
    name = models.CharField(max_length=100)
    slug = models.SlugField(
        max_length=60, help_text="Made from the name at creation; stays when the prompt is renamed."
    )
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "slug"], name="prompts_slug_unique_in_team")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class PromptVersion(models.Model):
    """One saved state of a prompt. Written once by ``services.version_create``; never updated."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    system = models.TextField(blank=True, help_text="The system message template.")
    messages = models.JSONField(
        default=list,
        blank=True,
        help_text='Message templates after the system one: [{"role": "user", "content": "..."}].',
    )
    variables = models.JSONField(
        default=list, blank=True, help_text="Placeholder names used by the templates, sorted."
    )
    parameters = models.JSONField(
        default=dict, blank=True, help_text="Default model parameters (temperature, max_tokens...)."
    )
    commit_message = models.CharField(max_length=500, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["prompt", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "number"], name="prompts_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.prompt.slug} v{self.number}"


class PromptLabel(models.Model):
    """A movable name for one version of a prompt, e.g. ``production``."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=LABEL_MAX_LENGTH, validators=[label_validator])
    # RESTRICT rather than PROTECT: a version a label points at can't be deleted on its
    # own, but deleting the whole prompt (or its team) still cascades through the label.
    version = models.ForeignKey(PromptVersion, on_delete=models.RESTRICT, related_name="labels")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["prompt", "name"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "name"], name="prompts_label_unique")
        ]

    def __str__(self) -> str:
        return f"{self.prompt.slug}@{self.name}"


class LabelMove(models.Model):
    """One move of a label; ``from_version`` is empty when the move created the label."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="label_moves")
    label = models.CharField(max_length=LABEL_MAX_LENGTH)
    from_version = models.ForeignKey(
        PromptVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    to_version = models.ForeignKey(PromptVersion, on_delete=models.CASCADE, related_name="+")
    moved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    moved_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-moved_at", "-pk"]
        indexes = [models.Index(fields=["prompt", "label"], name="prompts_move_prompt_label")]

    def __str__(self) -> str:
        start = f"v{self.from_version.number}" if self.from_version_id else "new"
        return f"{self.label}: {start} -> v{self.to_version.number}"
