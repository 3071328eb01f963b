"""The transactional outbox, which is also the team's event log.

A row is written in the same transaction as the change it describes, so it
exists if and only if the change committed. The relay publishes unpublished
rows in ``sequence`` order and stamps ``published_at``; published rows stay
for ``EVENTS_RETENTION_DAYS`` as the history the events page and the API read.
"""

import uuid

from django.db import models
from django.utils import timezone

from apps.teams.models import Team


class OutboxEvent(models.Model):
    sequence = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=40)
    subject = models.CharField(max_length=200)
    time = models.DateTimeField(default=timezone.now)
    actor = models.CharField(max_length=40, blank=True, help_text="user:<id>, key:<id> or system")
    actor_label = models.CharField(max_length=200, blank=True)
    # Denormalised for the page's and the API's filters.
    assistant_id = models.BigIntegerField(null=True, blank=True)
    key_id = models.BigIntegerField(null=True, blank=True)
    data = models.JSONField(default=dict)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-sequence"]
        indexes = [
            models.Index(
                fields=["sequence"],
                name="events_outbox_unpublished",
                condition=models.Q(published_at__isnull=True),
            ),
            models.Index(fields=["team", "-sequence"], name="events_team_seq"),
            models.Index(fields=["team", "time"], name="events_team_time"),
            # For retention only. Partial, so the planner can't pick it for the relay's
            # "published_at IS NULL": a bitmap scan over it walked every dead row
            # version the relay's updates left behind (20 ms per batch after 500k).
            models.Index(
                fields=["published_at"],
                name="events_published",
                condition=models.Q(published_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.subject} ({self.event_id})"
