"""Calendar months, enrollment days and time entries as UTC intervals.

Everything is compared in UTC: Python compares and subtracts two datetimes that share a tzinfo
by wall clock, which is wrong across a daylight-saving change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from fhirbridge.domain.timeentry import TimeEntry

__all__ = [
    "FIRST_YEAR",
    "LAST_YEAR",
    "Interval",
    "entry_interval",
    "local_midnight",
    "month_interval",
    "parse_month",
    "to_utc",
]

# Months billing accepts: far enough either way for any care-management record, and well
# inside what datetime arithmetic across time zones can represent (year 1 and 9999 overflow).
FIRST_YEAR = 1900
LAST_YEAR = 2100


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


@lru_cache(maxsize=4096)
def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    # Cached: a month-end report asks for the same few days once per entry set aside, and
    # converting out of a ZoneInfo is the costly part of judging one.
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


def parse_month(text: str) -> tuple[int, int]:
    """``YYYY-MM`` as (year, month); ValueError saying what is accepted otherwise."""
    reason = f"a month YYYY-MM from {FIRST_YEAR}-01 to {LAST_YEAR}-12"
    parts = text.split("-")
    if len(parts) != 2 or len(parts[0]) != 4 or len(parts[1]) != 2:
        raise ValueError(reason)
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise ValueError(reason)
    year, month = int(parts[0]), int(parts[1])
    if not (FIRST_YEAR <= year <= LAST_YEAR and 1 <= month <= 12):
        raise ValueError(reason)
    return year, month
