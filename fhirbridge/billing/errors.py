"""Errors of the billing package.

BillingError
├── RuleFileError        a rule-year file (or an installation override) is wrong;
│   │                    carries every problem found, each with file and line
│   └── RuleYearMissing  there is no rule file for the year at all
└── RollUpInputError     roll_up was handed inputs that cannot describe one patient-month
    └── RuleYearMismatch the rules are for another calendar year than the month
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BillingError",
    "RollUpInputError",
    "RuleFileError",
    "RuleProblem",
    "RuleYearMismatch",
    "RuleYearMissing",
    "new_year_command",
]


class BillingError(Exception):
    """Root of the billing errors."""


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """One thing wrong in a rule file: where it is and what is wrong."""

    file: Path
    line: int | None
    path: str  # dotted location inside the document, e.g. "codes.99490.counts_time_of.1"
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class RuleFileError(BillingError):
    def __init__(self, problems: list[RuleProblem]) -> None:
        if not problems:
            raise ValueError("RuleFileError needs at least one problem")
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def file(self) -> Path:
        return self.problems[0].file

    @property
    def line(self) -> int | None:
        return self.problems[0].line


class RuleYearMissing(RuleFileError):
    """No rule file exists for ``year``: a calendar year nobody has prepared yet.

    Also a RuleFileError, so a caller that only asks "are the rules usable?" needs one except.
    ``reason`` names the file without its folder, for answers that leave this machine.
    """

    def __init__(self, year: int, path: Path) -> None:
        self.year = year
        self.path = path
        self.reason = (
            f"no billing rules for CY{year} ({path.name} is missing); start them from the "
            f"latest year with `{new_year_command(year)}`, then verify every flagged entry"
        )
        super().__init__([RuleProblem(path, None, "", self.reason)])


def new_year_command(year: int) -> str:
    """The command line that starts the rule file of ``year``."""
    return f"fhirbridge billing rules new-year {year}"


class RollUpInputError(BillingError):
    def __init__(self, message: str, *, item_id: str | None = None) -> None:
        self.item_id = item_id
        super().__init__(message)


class RuleYearMismatch(RollUpInputError):
    def __init__(self, *, rule_year: int, month: tuple[int, int]) -> None:
        self.rule_year = rule_year
        self.month = month
        super().__init__(
            f"rules are for CY{rule_year} but the month is {month[0]:04d}-{month[1]:02d}"
        )
