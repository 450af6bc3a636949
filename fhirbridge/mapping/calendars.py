"""Holiday calendars (``mappings/calendars/*.yaml``): which days are not business days.

A calendar file lists holidays by year (the observed day, never a weekend). The checks, at
start-up and naming ``file:line``: each day lies in the year it is listed under, is a weekday,
and appears once. A year that is not listed is not an error: weekends still count, and whoever
counts business days in it says the calendar for that year is missing.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from fhirbridge.datafiles import DataFileError, parse_model, read_yaml
from fhirbridge.domain.transitional_care import BusinessCalendar

__all__ = [
    "DEFAULT_CALENDAR",
    "DEFAULT_CALENDARS_DIR",
    "calendar_file",
    "load_calendar",
]

DEFAULT_CALENDARS_DIR = Path(__file__).resolve().parents[2] / "mappings" / "calendars"
DEFAULT_CALENDAR = "us-federal-holidays"


class _Holiday(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    date: date
    name: str = Field(min_length=1)


class _CalendarFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    calendar: str = Field(min_length=1)
    title: str
    source: str | None = None
    years: dict[int, list[_Holiday]]


def calendar_file(name: str, *, calendars_dir: Path = DEFAULT_CALENDARS_DIR) -> Path:
    return calendars_dir / f"{name}.yaml"


def load_calendar(
    name: str = DEFAULT_CALENDAR, *, calendars_dir: Path = DEFAULT_CALENDARS_DIR
) -> BusinessCalendar:
    """The calendar ``<calendars_dir>/<name>.yaml``; DataFileError names file and line."""
    path = calendar_file(name, calendars_dir=calendars_dir)
    document = read_yaml(path)
    spec = parse_model(_CalendarFile, document)
    if spec.calendar != name:
        raise DataFileError(
            path, document.line_of(["calendar"]), f"says {spec.calendar!r}, file name says {name!r}"
        )
    seen: set[date] = set()
    holidays: dict[int, frozenset[date]] = {}
    for year, days in spec.years.items():
        for index, holiday in enumerate(days):
            line = document.line_of(["years", str(year), index])
            if holiday.date.year != year:
                raise DataFileError(path, line, f"{holiday.date} is not in {year}")
            if holiday.date.weekday() >= 5:
                raise DataFileError(
                    path, line, f"{holiday.date} is a weekend day: list the observed weekday"
                )
            if holiday.date in seen:
                raise DataFileError(path, line, f"{holiday.date} is listed twice")
            seen.add(holiday.date)
        holidays[year] = frozenset(h.date for h in days)
    return BusinessCalendar(name=spec.calendar, holidays=holidays)
