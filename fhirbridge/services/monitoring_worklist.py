"""RPM monitoring alerts for the care manager's worklist (``services.worklist`` lists them).

For the RPM patients of a caseload, as of today (practice time zone):

- **device-days**: the running 30-day period can no longer reach the days of the device code
  that needs most (99454: 16): "day 20 of 30, 9 days with readings: cannot reach 16". Days
  still possible are the rest of the period, today included unless today has a reading
  already. Uses the rule year ``services.worklist.threshold_rules`` gives (the latest year
  with a file, so nothing stops on January 1); without rules, not listed;
- **no-readings**: no counting reading for ``no_readings_days`` days or more while the episode
  runs: "no readings for 3 days (last on 2026-10-17)"; an RPM enrollment started that long
  ago without any reading: "no readings since the RPM enrollment started on 2026-10-01";
- **out-of-range**: the latest reading of a measure in the last ``reading_range_days`` days
  outside the target of one of the patient's active goals with that measure (LOINC; systolic
  8480-6 and diastolic 8462-4 targets read the blood-pressure panel's two values):
  "values outside target: systolic 162 above 140 (goal: blood pressure under 140/90)". A
  target of one value, or in another unit than the reading, is not compared.

Everything is read with a fixed number of queries (``store.device_days``), whatever the
caseload's size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from fhirbridge.billing.device_days import EPISODE_STATUSES, Episode, period_days_of
from fhirbridge.billing.rules import DeviceDaysPer, RuleYear
from fhirbridge.domain.goal import GoalTarget
from fhirbridge.domain.observation import (
    BLOOD_PRESSURE_PANEL,
    BODY_WEIGHT,
    DIASTOLIC,
    GLUCOSE,
    HEART_RATE,
    OXYGEN_SATURATION,
    OXYGEN_SATURATION_ARTERIAL,
    SYSTOLIC,
)
from fhirbridge.persistence import Store
from fhirbridge.persistence.readmodels.device_days import GoalTargetRow, LatestReading
from fhirbridge.services.monitoring_billing import episodes_by_enrollment

__all__ = ["AlertKind", "MonitoringAlert", "MonitoringPolicy", "monitoring_alerts"]

# What a goal's measure reads: (the reading's code, which of its values), and its name.
_MEASURES: dict[str, tuple[str, int, str]] = {
    SYSTOLIC: (BLOOD_PRESSURE_PANEL, 0, "systolic"),
    DIASTOLIC: (BLOOD_PRESSURE_PANEL, 1, "diastolic"),
    BODY_WEIGHT: (BODY_WEIGHT, 0, "weight"),
    HEART_RATE: (HEART_RATE, 0, "heart rate"),
    OXYGEN_SATURATION: (OXYGEN_SATURATION, 0, "oxygen saturation"),
    OXYGEN_SATURATION_ARTERIAL: (OXYGEN_SATURATION_ARTERIAL, 0, "oxygen saturation"),
    GLUCOSE: (GLUCOSE, 0, "glucose"),
}


class AlertKind(StrEnum):
    DEVICE_DAYS = "device-days"
    NO_READINGS = "no-readings"
    OUT_OF_RANGE = "out-of-range"


@dataclass(frozen=True, slots=True)
class MonitoringPolicy:
    no_readings_days: int = 3
    reading_range_days: int = 7


@dataclass(frozen=True, slots=True)
class MonitoringAlert:
    kind: AlertKind
    patient_id: str
    due_on: date
    summary: str
    code: str | None = None  # device-days: the code out of reach
    days_with_readings: int | None = None  # device-days: in the running period
    period_day: int | None = None  # device-days: today's day of the period
    reading_id: str | None = None  # out-of-range: the reading


def monitoring_alerts(
    store: Store,
    *,
    patient_ids: Sequence[str],
    today: date,
    rules: RuleYear | None,
    policy: MonitoringPolicy = MonitoringPolicy(),
) -> list[MonitoringAlert]:
    """The alerts of ``patient_ids`` (the caseload's RPM patients) as of ``today``."""
    if not patient_ids:
        return []
    readmodel = store.device_days
    rows = readmodel.episodes(until=today, statuses=EPISODE_STATUSES, patient_ids=patient_ids)
    episodes = episodes_by_enrollment(rows)
    length = period_days_of(rules) if rules is not None else 30
    counts: dict[str, dict[int, int]] = defaultdict(dict)
    last_day: dict[str, date] = {}
    for found in readmodel.period_days(
        until=today, statuses=EPISODE_STATUSES, period_days=length, patient_ids=patient_ids
    ):
        counts[found.enrollment_id][found.number] = found.days
        last_day[found.enrollment_id] = max(
            found.last_day, last_day.get(found.enrollment_id, found.last_day)
        )
    alerts: list[MonitoringAlert] = []
    running = {e.patient_id for e in episodes.values() if e.end is None or e.end >= today}
    for row in rows:
        episode = episodes.get(row.enrollment_id)
        if episode is None:
            if row.patient_id in running or (row.end is not None and row.end < today):
                continue
            waited = (today - row.start).days
            if row.first_day is None and waited >= policy.no_readings_days:
                alerts.append(
                    MonitoringAlert(
                        AlertKind.NO_READINGS,
                        row.patient_id,
                        today,
                        f"no readings since the RPM enrollment started on {row.start.isoformat()}",
                    )
                )
            continue
        if episode.end is not None and episode.end < today:
            continue
        latest = last_day.get(episode.enrollment_id, episode.start)
        alerts.extend(_silence(episode, latest, today, policy))
        if rules is not None:
            alerts.extend(
                _out_of_reach(episode, counts[episode.enrollment_id], latest, today, rules)
            )
    since = today - timedelta(days=policy.reading_range_days - 1)
    alerts.extend(
        _outside_targets(
            readmodel.latest_readings(since=since, patient_ids=patient_ids),
            readmodel.goal_targets(patient_ids=patient_ids),
        )
    )
    return alerts


def _silence(
    episode: Episode, latest: date, today: date, policy: MonitoringPolicy
) -> Iterator[MonitoringAlert]:
    quiet = (today - latest).days
    if quiet >= policy.no_readings_days:
        yield MonitoringAlert(
            AlertKind.NO_READINGS,
            episode.patient_id,
            today,
            f"no readings for {quiet} days (last on {latest.isoformat()})",
        )


def _out_of_reach(
    episode: Episode, counts: dict[int, int], latest: date, today: date, rules: RuleYear
) -> Iterator[MonitoringAlert]:
    period_codes = [
        (code, rule) for code, rule in rules.device_day_codes() if rule.per is DeviceDaysPer.PERIOD
    ]
    if not period_codes:
        return
    code, rule = max(period_codes, key=lambda item: item[1].min_days)
    length = rule.period_days
    number = episode.number_of(today, length)
    if number is None:
        return
    period = episode.period(number, length)
    days = counts.get(number, 0)
    day = period.day_of(today)
    still = (period.last - today).days + (0 if latest == today else 1)
    if days >= rule.min_days or days + still >= rule.min_days:
        return
    yield MonitoringAlert(
        AlertKind.DEVICE_DAYS,
        episode.patient_id,
        period.last,
        f"day {day} of {length}, {days} day{'' if days == 1 else 's'} with readings: "
        f"cannot reach {rule.min_days}",
        code=code,
        days_with_readings=days,
        period_day=day,
    )


def _outside_targets(
    readings: Sequence[LatestReading], goals: Sequence[GoalTargetRow]
) -> Iterator[MonitoringAlert]:
    latest = {(r.patient_id, r.code): r for r in readings}
    for goal in goals:
        measure = goal.target.measure
        if measure is None or measure.code not in _MEASURES:
            continue
        code, which, name = _MEASURES[measure.code]
        reading = latest.get((goal.patient_id, code))
        if reading is None:
            continue
        value = reading.value if which == 0 else reading.second_value
        if value is None or (goal.target.unit not in (None, reading.unit)):
            continue
        outside = _outside(value, goal.target)
        if outside is None:
            continue
        about = f" (goal: {goal.description})" if goal.description else ""
        yield MonitoringAlert(
            AlertKind.OUT_OF_RANGE,
            goal.patient_id,
            reading.day,
            f"values outside target: {name} {_number(value)} {outside}{about}",
            reading_id=reading.id,
        )


def _outside(value: Decimal, target: GoalTarget) -> str | None:
    if target.low is not None and value < target.low:
        return f"below {_number(target.low)}"
    if target.high is not None and value > target.high:
        return f"above {_number(target.high)}"
    return None


def _number(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text
