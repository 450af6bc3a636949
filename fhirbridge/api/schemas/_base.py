"""What every body shares, and the constrained types its fields are declared with.

Every string and date a client sends passes one of these types, so what FHIR or the database
cannot hold is refused with a 422 naming the field, before any service sees it:

- no control characters: FHIR strings may not hold them and PostgreSQL refuses NUL. Free text
  (``Text``) keeps tab, line feed and carriage return; nothing else below U+0020, no U+007F, no
  lone surrogate (``"\\ud800"`` is valid JSON but no valid Unicode);
- lengths the columns hold: ids up to 64 characters (``ID`` in persistence/tables.py), codes 64,
  names and references 255, titles 500, free text 10 000; never empty (FHIR strings are not);
- dates and instants from 1900-01-01 to 2100-12-31 (``EARLIEST``..``LATEST``): care management
  happens within a lifetime, and year 1 or 9999 overflow the moment a timezone is applied.

Error reasons name the rule, never the value sent.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, StringConstraints

__all__ = [
    "EARLIEST",
    "LATEST",
    "Code",
    "Day",
    "Id",
    "Incoming",
    "Instant",
    "Name",
    "OptionalId",
    "Outgoing",
    "Text",
    "Title",
    "checked_day",
    "checked_line",
    "unprintable",
]

EARLIEST = date(1900, 1, 1)
LATEST = date(2100, 12, 31)
TEXT_MAX = 10_000

# Below U+0020 but tab, LF and CR; DEL; the surrogate block (only ever lone in a str).
_CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_CONTROL_IN_LINE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def unprintable(value: str, *, multiline: bool = False) -> bool:
    """Whether ``value`` holds a character FHIR strings may not (see module doc)."""
    pattern = _CONTROL_IN_TEXT if multiline else _CONTROL_IN_LINE
    return pattern.search(value) is not None


def checked_line(value: str) -> str:
    """A one-line value (id, code, name): no control character at all."""
    if unprintable(value):
        raise ValueError("must not contain control characters")
    return value


def _checked_text(value: str) -> str:
    if unprintable(value, multiline=True):
        raise ValueError("must not contain control characters other than tab and line breaks")
    return value


def checked_day(value: date) -> date:
    """A date (or a date-time's own calendar day) within ``EARLIEST``..``LATEST``."""
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST <= day <= LATEST:
        raise ValueError(f"must be between {EARLIEST.isoformat()} and {LATEST.isoformat()}")
    return value


def _checked_instant(value: datetime) -> datetime:
    # Judged on the instant's own calendar day, before any conversion that could overflow.
    checked_day(value)
    return value


Id = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(checked_line)]
OptionalId = Id | None
Code = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(checked_line)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(checked_line)]
Title = Annotated[
    str, StringConstraints(min_length=1, max_length=500), AfterValidator(checked_line)
]
Text = Annotated[
    str, StringConstraints(min_length=1, max_length=TEXT_MAX), AfterValidator(_checked_text)
]
Day = Annotated[date, AfterValidator(checked_day)]
Instant = Annotated[AwareDatetime, AfterValidator(_checked_instant)]


class Incoming(BaseModel):
    """A request body: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Outgoing(BaseModel):
    model_config = ConfigDict(from_attributes=True)
