"""Load a rule-year file, deep-merge an installation's override over it, and validate the result.

Every problem is reported with the file and line it comes from, whichever of the two files that
is, and all problems of a file are reported at once so one edit-run cycle fixes them all.

Merging: mappings merge key by key, recursively; anything else (lists, scalars, ``null``) in the
override replaces the year file's value. So an override can change one add-on cap
(``codes: {"99490": {add_on: {max_units_per_month: 3}}}``) without restating the code, but a
list such as ``counts_time_of`` is always given whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fhirbridge.billing.errors import RuleFileError, RuleProblem, RuleYearMissing
from fhirbridge.billing.rules import DeviceDaysPer, MonthPhase, RuleYear, TimedCode
from fhirbridge.datafiles import DataFileError, YamlDocument, read_yaml
from fhirbridge.domain.enrollment import Program
from fhirbridge.mapping.calendars import calendar_file

__all__ = [
    "DEFAULT_RULES_DIR",
    "available_rule_years",
    "latest_rule_year",
    "load_rule_year",
    "load_rules",
    "rule_file",
]

DEFAULT_RULES_DIR = Path(__file__).resolve().parents[2] / "mappings" / "billing"

_RULE_FILE = re.compile(r"cy(\d{4})\.yaml")

_PathKey = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class _Where:
    file: Path
    line: int


class _LineMap:
    """Where each node of a (possibly merged) document was written."""

    def __init__(self) -> None:
        self._at: dict[_PathKey, _Where] = {}

    @classmethod
    def of(cls, document: YamlDocument) -> _LineMap:
        lines = cls()
        lines._at = {loc: _Where(document.path, line) for loc, line in document.lines.items()}
        return lines

    def overlay(self, other: _LineMap) -> None:
        self._at.update({path: where for path, where in other._at.items() if path})

    def locate(self, loc: Iterable[str | int], *, default: Path) -> tuple[Path, int | None]:
        # Segments that are not document keys (pydantic's union tags, missing fields) are
        # skipped, so the answer is the deepest node that exists.
        found: _PathKey = ()
        for segment in loc:
            candidate = (*found, segment if isinstance(segment, int) else str(segment))
            if candidate in self._at:
                found = candidate
        where = self._at.get(found)
        return (where.file, where.line) if where else (default, None)


def _read(file: Path) -> tuple[Any, _LineMap]:
    try:
        document = read_yaml(file)
    except DataFileError as exc:
        raise RuleFileError([RuleProblem(file, exc.line, "", exc.reason)]) from exc
    if not isinstance(document.data, dict):
        raise RuleFileError([RuleProblem(file, 1, "", "the top level must be a mapping")])
    return document.data, _LineMap.of(document)


def _deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _deep_merge(base[key], value) if key in base else value
        return merged
    return override


def load_rules(path: Path, *, override: Path | None = None) -> RuleYear:
    """Load one rule-year file, with an installation's override deep-merged over it.

    Loaded once per process for as long as neither file changes: the result (frozen) is
    cached by both files' paths and their modification times and sizes, so asking again costs
    two ``stat`` calls, and an edited file is read and checked again. A file that is wrong is
    never cached (its RuleFileError is raised on every call).
    """
    return _load_rules_cached(path, _signature(path), override, _signature(override))


_Signature = tuple[int, int, int] | None


def _signature(file: Path | None) -> _Signature:
    """What changes when a file is written: a missing file is None (read, then, to report it)."""
    if file is None:
        return None
    try:
        found = file.stat()
    except OSError:
        return None
    return (found.st_mtime_ns, found.st_size, found.st_ino)


@lru_cache(maxsize=64)
def _load_rules_cached(
    path: Path, _path_signature: _Signature, override: Path | None, _override_signature: _Signature
) -> RuleYear:
    # The signatures are part of the cache key only: an edited file is a cache miss.
    return _load_rules(path, override=override)


def _load_rules(path: Path, *, override: Path | None = None) -> RuleYear:
    data, lines = _read(path)
    if override is not None:
        extra, extra_lines = _read(override)
        if "rule_year" in extra and extra["rule_year"] != data.get("rule_year"):
            file, line = extra_lines.locate(("rule_year",), default=override)
            raise RuleFileError(
                [
                    RuleProblem(
                        file,
                        line,
                        "rule_year",
                        f"an override cannot change the rule year ({data.get('rule_year')})",
                    )
                ]
            )
        data = _deep_merge(data, extra)
        lines.overlay(extra_lines)
    try:
        rules = RuleYear.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            if error["type"] == "union_tag_invalid":
                # Point at the tag itself rather than the mapping that carries it.
                loc = (*loc, error["ctx"]["discriminator"].strip("'"))
            file, line = lines.locate(loc, default=path)
            dotted = ".".join(str(part) for part in error["loc"])
            problems.append(RuleProblem(file, line, dotted, error["msg"]))
        raise RuleFileError(problems) from exc
    problems = [
        RuleProblem(*lines.locate(loc, default=path), ".".join(map(str, loc)), message)
        for loc, message in _cross_reference_problems(rules)
    ]
    if problems:
        raise RuleFileError(problems)
    return rules


def load_rule_year(
    year: int, *, rules_dir: Path = DEFAULT_RULES_DIR, override: Path | None = None
) -> RuleYear:
    """The rules of calendar year ``year`` from ``rules_dir/cy{year}.yaml`` (plus override).

    Raises RuleYearMissing when the year has no file, RuleFileError when the file is wrong.
    """
    path = rule_file(year, rules_dir=rules_dir)
    if not path.is_file():
        raise RuleYearMissing(year, path)
    rules = load_rules(path, override=override)
    if rules.rule_year != year:
        raise RuleFileError(
            [RuleProblem(path, 1, "rule_year", f"says {rules.rule_year}, file name says {year}")]
        )
    return rules


def rule_file(year: int, *, rules_dir: Path = DEFAULT_RULES_DIR) -> Path:
    """Where the rule file of calendar year ``year`` is (whether or not it exists)."""
    return rules_dir / f"cy{year:04d}.yaml"


def available_rule_years(*, rules_dir: Path = DEFAULT_RULES_DIR) -> list[int]:
    """The calendar years that have a rule file in ``rules_dir``, oldest first."""
    if not rules_dir.is_dir():
        return []
    return sorted(
        int(match.group(1))
        for file in rules_dir.iterdir()
        if (match := _RULE_FILE.fullmatch(file.name)) and file.is_file()
    )


def latest_rule_year(year: int, *, rules_dir: Path = DEFAULT_RULES_DIR) -> RuleYear:
    """The newest rules of a year at or before ``year``; ``.rule_year`` says which year it is.

    For hints that must not stop on January 1 before the new year's file is written
    (the worklist's "near threshold"); billing a month itself needs that month's own year.
    Raises RuleYearMissing (naming ``year``'s file) when no earlier year has rules either.
    """
    earlier = [
        candidate for candidate in available_rule_years(rules_dir=rules_dir) if candidate <= year
    ]
    if not earlier:
        raise RuleYearMissing(year, rule_file(year, rules_dir=rules_dir))
    return load_rule_year(earlier[-1], rules_dir=rules_dir)


def _cross_reference_problems(rules: RuleYear) -> list[tuple[_PathKey, str]]:
    problems: list[tuple[_PathKey, str]] = []
    add_ons = rules.add_on_codes()

    def check_sources(path: _PathKey, sources: tuple[str, ...]) -> None:
        for index, source in enumerate(sources):
            if source not in rules.sources:
                problems.append(((*path, "sources", index), f"unknown source {source!r}"))

    for program, program_rule in rules.programs.items():
        check_sources(("programs", program.value), program_rule.sources)
    for code, rule in rules.codes.items():
        check_sources(("codes", code), rule.sources)
        for index, program in enumerate(rule.programs):
            if program not in rules.programs:
                problems.append(
                    (
                        ("codes", code, "programs", index),
                        f"program {program.value} has no entry under programs",
                    )
                )
        if isinstance(rule, TimedCode) and rule.add_on is not None:
            check_sources(("codes", code, "add_on"), rule.add_on.sources)
            if rule.add_on.code in rules.codes:
                problems.append(
                    (
                        ("codes", code, "add_on", "code"),
                        f"add-on {rule.add_on.code} is also listed as a code of its own",
                    )
                )
    for name, exclusion in rules.exclusions.items():
        check_sources(("exclusions", name), exclusion.sources)
        for field, listed in (("codes", exclusion.codes), ("excludes", exclusion.excludes)):
            for index, code in enumerate(listed):
                path: _PathKey = ("exclusions", name, field, index)
                if code in add_ons:
                    problems.append(
                        (path, f"{code} is an add-on of {add_ons[code]}: name the base code")
                    )
                elif code not in rules.codes:
                    problems.append((path, f"unknown code {code}"))
    problems.extend(_shared_minutes_problems(rules))
    problems.extend(_transitional_care_problems(rules))
    problems.extend(_device_days_problems(rules))
    problems.extend(_apcm_problems(rules))
    return problems


def _shared_minutes_problems(rules: RuleYear) -> list[tuple[_PathKey, str]]:
    """Two codes that could count the same minutes must exclude each other.

    An entry belongs to one program and one staff role, so this is what guarantees that the
    same minutes are never counted twice.
    """
    problems: list[tuple[_PathKey, str]] = []
    for (first, a), (second, b) in combinations(rules.timed_codes(), 2):
        if {a.months, b.months} == {MonthPhase.FIRST, MonthPhase.LATER}:
            continue
        shared = [
            (program, role)
            for program in a.programs
            if program in b.programs
            for role in a.counts_time_of
            if role in b.counts_time_of
        ]
        if shared and rules.conflicts(first, second) is None:
            program, role = shared[0]
            problems.append(
                (
                    ("codes", second, "counts_time_of"),
                    f"{second} and {first} would both count {program.value} time of "
                    f"{role.value}: list them in one exclusion",
                )
            )
    return problems


def _apcm_problems(rules: RuleYear) -> list[tuple[_PathKey, str]]:
    """APCM tiers must give every patient exactly one tier (by condition count and QMB), and
    an add-on must follow tier codes of the same file and name programs the file has."""
    problems: list[tuple[_PathKey, str]] = []
    tiers = rules.apcm_tiers()
    if tiers:
        bounds = [t.min_conditions for _, t in tiers]
        bounds += [t.max_conditions for _, t in tiers if t.max_conditions is not None]
        for count in range(max(bounds) + 2):
            for qmb in (False, True):
                fitting = [code for code, tier in tiers if tier.fits(count, qmb)]
                if len(fitting) == 1:
                    continue
                patient = f"{count} chronic conditions, {'QMB' if qmb else 'not QMB'}"
                if fitting:
                    path: _PathKey = ("codes", fitting[1], "apcm_tier")
                    problems.append((path, f"{patient}: both {' and '.join(fitting)} fit"))
                else:
                    path = ("codes", tiers[0][0], "apcm_tier")
                    problems.append((path, f"{patient}: no APCM tier fits"))
    tier_codes = {code for code, _ in tiers}
    for code, add_on in rules.apcm_add_ons():
        for index, base in enumerate(add_on.with_codes):
            if base not in tier_codes:
                problems.append(
                    (
                        ("codes", code, "apcm_add_on", "with_codes", index),
                        f"{base} is not an APCM tier code (apcm_tier) of this file",
                    )
                )
        for index, program in enumerate(add_on.service_programs):
            if program not in rules.programs:
                problems.append(
                    (
                        ("codes", code, "apcm_add_on", "service_programs", index),
                        f"program {program.value} has no entry under programs",
                    )
                )
    return problems


def _device_days_problems(rules: RuleYear) -> list[tuple[_PathKey, str]]:
    """RPM device-days codes: one period length a year, sources that exist, a program, a code
    per period for the episode code to follow, and period codes whose day ranges overlap
    listed in one exclusion (otherwise one period could earn both)."""
    problems: list[tuple[_PathKey, str]] = []
    codes = rules.device_day_codes()
    per_period = [(code, days) for code, days in codes if days.per is DeviceDaysPer.PERIOD]
    for code, days in codes:
        where: _PathKey = ("codes", code, "device_days")
        for index, source in enumerate(days.sources):
            if source not in rules.sources:
                problems.append(((*where, "sources", index), f"unknown source {source!r}"))
        if not rules.codes[code].programs:
            problems.append((("codes", code, "programs"), "a device-days code needs its program"))
        if days.period_days != codes[0][1].period_days:
            problems.append(
                (
                    (*where, "period_days"),
                    f"{days.period_days} days, but {codes[0][0]} has periods of "
                    f"{codes[0][1].period_days}: one period length a year",
                )
            )
        if days.per is DeviceDaysPer.EPISODE and not per_period:
            problems.append((where, "an episode code needs a device-days code per period"))
    for (first, a), (second, b) in combinations(per_period, 2):
        overlap = a.fits(b.min_days) or b.fits(a.min_days)
        if overlap and rules.conflicts(first, second) is None:
            problems.append(
                (
                    ("codes", second, "device_days"),
                    f"{second} and {first} could both be earned in one period: list them in "
                    "one exclusion",
                )
            )
    return problems


def _transitional_care_problems(rules: RuleYear) -> list[tuple[_PathKey, str]]:
    """TCM minutes never count toward a timed code (so never twice toward CCM); the TCM codes
    share one contact rule (a period has one contact deadline) and name a calendar file that
    exists."""
    problems: list[tuple[_PathKey, str]] = []
    for code, timed in rules.timed_codes():
        if Program.TCM in timed.programs:
            index = timed.programs.index(Program.TCM)
            problems.append(
                (
                    ("codes", code, "programs", index),
                    "TCM is judged per discharge: its minutes never count toward a timed code",
                )
            )
    tcm_codes = rules.transitional_care_codes()
    for code, terms in tcm_codes:
        if not calendar_file(terms.holiday_calendar).is_file():
            problems.append(
                (
                    ("codes", code, "transitional_care", "holiday_calendar"),
                    f"no calendar file {calendar_file(terms.holiday_calendar)}",
                )
            )
        first_code, first = tcm_codes[0]
        for name in ("contact_within_business_days", "attempts_for_contact", "holiday_calendar"):
            if getattr(terms, name) != getattr(first, name):
                problems.append(
                    (
                        ("codes", code, "transitional_care", name),
                        f"differs from {first_code}: a TCM period has one contact deadline",
                    )
                )
    return problems
