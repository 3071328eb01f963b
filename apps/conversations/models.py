"""Conversations with an assistant, kept per assistant and per user.

An assistant message points at the run that produced it; its text is the
run's output, so a streamed answer is stored once (on the run) and the
conversation never holds a stale copy while the run is still going.
"""

from django.conf import settings
from django.db import models

from apps.assistants.models import Assistant
from apps.teams.models import Team


class Conversation(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="conversations")
    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="conversations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="conversations",
    )
    api_key = models.ForeignKey(
        "keys.ApiKey",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="conversations",
        help_text="The owner when a program started the conversation with an API key.",
    )
    title = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.title or f"conversation {self.pk}"


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(
        blank=True, help_text="The user's text; assistant text is the run's."
    )
    run = models.OneToOneField(
        "inference.ChatRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="message",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.role} message {self.pk}"

    @property
    def text(self) -> str:
        if self.role == self.Role.ASSISTANT and self.run_id is not None:
            return self.run.output
        return self.content
