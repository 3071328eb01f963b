"""What a usage question asks: a range of days in the team's time zone and filters.

The page and the API both turn their parameters into a ``Window`` and
``Filters`` here, so they answer the same question the same way and refuse
the same bad input (a reversed or overlong range, an unknown assistant or key).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from apps.assistants.models import Assistant
from apps.core.errors import NotFound, ServiceError
from apps.keys.models import ApiKey
from apps.prompts.models import PromptVersion

RANGES = {
    "today": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "month": "This month",
    "custom": "Custom",
}
DEFAULT_RANGE = "7d"
MAX_RANGE_DAYS = 366
# Up to this many days a chart has one point per hour, beyond it one per day.
HOURLY_UP_TO_DAYS = 2


@dataclass(frozen=True)
class Window:
    """Whole local days ``start``..``end`` (inclusive) on the team's clock."""

    start: date
    end: date
    zone: ZoneInfo
    name: str = DEFAULT_RANGE

    @property
    def granularity(self) -> str:
        return "hour" if self.days_count <= HOURLY_UP_TO_DAYS else "day"

    @property
    def days_count(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(), self.zone).astimezone(UTC)

    @property
    def end_at(self) -> datetime:
        """The first instant after the window."""
        return datetime.combine(self.end + timedelta(days=1), time(), self.zone).astimezone(UTC)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days_count)]

    def hours(self) -> list[datetime]:
        """Starts of the local hours, as UTC instants (23 or 25 of them on DST days)."""
        first, last = self.start_at, self.end_at
        count = int((last - first).total_seconds() // 3600)
        return [first + timedelta(hours=i) for i in range(count)]


def window_for(
    zone: ZoneInfo,
    name: str | None = None,
    start: date | None = None,
    end: date | None = None,
    *,
    today: date | None = None,
) -> Window:
    name = name or DEFAULT_RANGE
    today = today or timezone.now().astimezone(zone).date()
    if name not in RANGES:
        raise ServiceError(f"range must be one of {', '.join(RANGES)}.", param="range")
    if name == "today":
        return Window(today, today, zone, name)
    if name == "7d":
        return Window(today - timedelta(days=6), today, zone, name)
    if name == "30d":
        return Window(today - timedelta(days=29), today, zone, name)
    if name == "month":
        return Window(today.replace(day=1), today, zone, name)
    if start is None or end is None:
        raise ServiceError(
            "A custom range needs both start and end dates.", param="start" if not start else "end"
        )
    if end < start:
        raise ServiceError("end is before start.", param="end", code="invalid_range")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ServiceError(
            f"A range may span at most {MAX_RANGE_DAYS} days; ask for less at a time.",
            param="end",
            code="range_too_long",
        )
    return Window(start, end, zone, name)


@dataclass(frozen=True)
class Filters:
    """Ids to narrow by; the same attribute names on ledger rows and rollups."""

    assistant_id: int | None = None
    model: str | None = None
    api_key_id: int | None = None
    prompt_version_id: int | None = None

    def lookups(self) -> dict:
        return {name: value for name, value in self.__dict__.items() if value is not None}


def filters_for(
    team,
    *,
    assistant: str | None = None,
    model: str | None = None,
    key: str | None = None,
    prompt_version: int | None = None,
) -> Filters:
    """Filters from what callers send (slugs, public ids); an unknown one is a 404
    naming the parameter, so a typo is never mistaken for "no usage"."""
    assistant_id = key_id = version_id = None
    if assistant:
        assistant_id = (
            Assistant.objects.filter(team=team, slug=assistant).values_list("pk", flat=True).first()
        )
        if assistant_id is None:
            raise NotFound(f"No assistant {assistant!r} in this team.", param="assistant")
    if key:
        keys = ApiKey.objects.filter(team=team, public_id=key)
        key_id = keys.values_list("pk", flat=True).first()
        if key_id is None:
            raise NotFound(f"No API key {key!r} in this team.", param="key")
    if prompt_version is not None:
        version_id = (
            PromptVersion.objects.filter(prompt__team=team, pk=prompt_version)
            .values_list("pk", flat=True)
            .first()
        )
        if version_id is None:
            raise NotFound(
                f"No prompt version {prompt_version} in this team.", param="prompt_version"
            )
    return Filters(assistant_id, (model or "").strip() or None, key_id, version_id)
