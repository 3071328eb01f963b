"""Budget periods in a team's time zone.

A period has an id (``2025-06`` or ``2025-06-14``) that goes into the Redis key
names, so a new period starts with fresh counters the moment the clock passes
its start: no job has to reset anything. Boundaries are local midnights turned
into instants, so a day around a DST change is 23 or 25 hours long, as the
team's clock says.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.utils import timezone

from apps.core.errors import ServiceError
from apps.quotas.models import Period


@dataclass(frozen=True)
class Window:
    kind: str
    id: str
    start: datetime
    end: datetime

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def window(kind: str, zone: ZoneInfo, at: datetime | None = None) -> Window:
    """The period of ``kind`` that contains ``at`` (now by default)."""
    local = (at or timezone.now()).astimezone(zone)
    if kind == Period.DAY:
        first = local.date()
        following = first + timedelta(days=1)
        period_id = first.isoformat()
    elif kind == Period.MONTH:
        first = local.date().replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        period_id = f"{first:%Y-%m}"
    else:
        raise ValueError(f"unknown period {kind!r}")
    return Window(
        kind=kind,
        id=period_id,
        start=_local_midnight(first, zone),
        end=_local_midnight(following, zone),
    )


def clean_time_zone(value) -> str:
    """An IANA zone name, or a ServiceError that says what is wrong with it."""
    if not isinstance(value, str) or not value.strip():
        raise ServiceError(
            "time_zone must be an IANA time zone such as Europe/Paris.", param="time_zone"
        )
    name = value.strip()
    if name not in available_timezones():
        raise ServiceError(
            f"Unknown time zone {name!r}: use an IANA name such as Europe/Paris or UTC.",
            param="time_zone",
        )
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ServiceError(f"Unknown time zone {name!r}.", param="time_zone") from None
    return name
