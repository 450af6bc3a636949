"""What a monthly roll-up returns: small values that explain themselves."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BilledCode", "EarnedCode", "MonthlyResult", "NotEarned", "SetAside"]


@dataclass(frozen=True, slots=True)
class BilledCode:
    """A code billed this month outside the time roll-up (APCM, TCM, RPM device supply).

    The roll-up does not earn these; it needs them to apply exclusions such as APCM vs CCM.
    """

    code: str
    practitioner_id: str


@dataclass(frozen=True, slots=True)
class EarnedCode:
    code: str
    units: int
    practitioner_id: str
    minutes: int  # minutes of the code family counted this month (base and add-on alike)
    entry_ids: tuple[str, ...]
    note: str | None = None  # e.g. an add-on cap that left minutes unbilled


@dataclass(frozen=True, slots=True)
class NotEarned:
    code: str
    reason: str  # plain words: "18 of 20 minutes", "no consent on file"


@dataclass(frozen=True, slots=True)
class SetAside:
    """A time entry of the month whose minutes count toward no code, and why."""

    entry_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class MonthlyResult:
    patient_id: str
    month: tuple[int, int]
    rule_year: int
    earned: tuple[EarnedCode, ...]
    not_earned: tuple[NotEarned, ...]
    set_aside: tuple[SetAside, ...]

    def units(self, code: str) -> int:
        return sum(e.units for e in self.earned if e.code == code)

    def reason(self, code: str) -> str | None:
        return next((n.reason for n in self.not_earned if n.code == code), None)
