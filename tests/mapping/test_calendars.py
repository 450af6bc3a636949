"""Holiday calendars are data, checked at load time with file:line errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from fhirbridge.datafiles import DataFileError
from fhirbridge.mapping.calendars import load_calendar


def write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "test-holidays.yaml").write_text(
        "calendar: test-holidays\ntitle: test\nyears:\n" + body, encoding="utf-8"
    )
    return tmp_path


def test_the_shipped_calendar_lists_2025_to_2027() -> None:
    calendar = load_calendar()

    assert sorted(calendar.holidays) == [2025, 2026, 2027]
    assert date(2026, 7, 3) in calendar.holidays[2026]  # July 4 2026 is a Saturday
    assert not calendar.is_business_day(date(2027, 12, 31))


def test_a_weekend_holiday_is_refused_with_its_line(tmp_path: Path) -> None:
    folder = write(tmp_path, "  2026:\n    - {date: 2026-07-04, name: Independence Day}\n")

    with pytest.raises(DataFileError) as caught:
        load_calendar("test-holidays", calendars_dir=folder)

    assert caught.value.line == 5
    assert "weekend" in caught.value.reason


def test_a_day_under_the_wrong_year_is_refused(tmp_path: Path) -> None:
    folder = write(tmp_path, "  2026:\n    - {date: 2027-01-01, name: New Year}\n")

    with pytest.raises(DataFileError, match=r"test-holidays.yaml:5: 2027-01-01 is not in 2026"):
        load_calendar("test-holidays", calendars_dir=folder)


def test_a_day_listed_twice_is_refused(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        "  2026:\n    - {date: 2026-01-01, name: a}\n    - {date: 2026-01-01, name: b}\n",
    )

    with pytest.raises(DataFileError, match="listed twice"):
        load_calendar("test-holidays", calendars_dir=folder)
