"""Calendar months, enrollment days and time entries as UTC intervals.

Everything is compared in UTC: Python compares and subtracts two datetimes that share a tzinfo
by wall clock, which is wrong across a daylight-saving change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from fhirbridge.domain.timeentry import TimeEntry

__all__ = ["Interval", "entry_interval", "local_midnight", "month_interval", "to_utc"]


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open span of time [start, end) in UTC."""

    start: datetime
    end: datetime

    def clip(self, other: Interval) -> Interval | None:
        start, end = max(self.start, other.start), min(self.end, other.end)
        return Interval(start, end) if start < end else None

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    @property
    def whole_minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def month_interval(year: int, month: int, tz: ZoneInfo) -> Interval:
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return Interval(local_midnight(first, tz), local_midnight(following, tz))


def to_utc(moment: datetime, tz: ZoneInfo) -> datetime:
    # A naive time is the practice's wall-clock time: that is how staff enter it.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


def entry_interval(entry: TimeEntry, tz: ZoneInfo) -> Interval | None:
    """The span the entry's minutes occupy, or None when its start or duration is unknown.

    Recorded ``minutes`` win over ``end``: they are what the staff member attested, and they
    run continuously from ``start``.
    """
    if entry.start is None:
        return None
    start = to_utc(entry.start, tz)
    if entry.minutes is not None:
        return Interval(start, start + timedelta(minutes=entry.minutes))
    if entry.end is None:
        return None
    return Interval(start, to_utc(entry.end, tz))
