"""Care-management billing: rule years as data, and the monthly roll-up that applies them.

rules = load_rule_year(2025, override=Path("/etc/fhirbridge/billing-cy2025.yaml"))
result = roll_up(rules=rules, month=(2025, 3), patient_id="p1", enrollments=[...],
                 consents=[...], entries=[...], tz=ZoneInfo("America/New_York"))
result.earned      # EarnedCode(code, units, practitioner_id, minutes, entry_ids, note)
result.not_earned  # NotEarned(code, reason) -- "18 of 20 minutes", "no consent on file"
result.set_aside   # SetAside(entry_id, reason) -- entries that count for nothing

load_rule_year(2027)    # RuleYearMissing: names cy2027.yaml and `fhirbridge billing rules new-year`
latest_rule_year(2027)  # the newest rules of a year <= 2027 (.rule_year says which)
"""

from fhirbridge.billing.errors import (
    BillingError,
    RollUpInputError,
    RuleFileError,
    RuleProblem,
    RuleYearMismatch,
    RuleYearMissing,
)
from fhirbridge.billing.loader import (
    DEFAULT_RULES_DIR,
    latest_rule_year,
    load_rule_year,
    load_rules,
)
from fhirbridge.billing.result import BilledCode, EarnedCode, MonthlyResult, NotEarned, SetAside
from fhirbridge.billing.rollup import roll_up
from fhirbridge.billing.rules import RuleYear

__all__ = [
    "DEFAULT_RULES_DIR",
    "BilledCode",
    "BillingError",
    "EarnedCode",
    "MonthlyResult",
    "NotEarned",
    "RollUpInputError",
    "RuleFileError",
    "RuleProblem",
    "RuleYear",
    "RuleYearMismatch",
    "RuleYearMissing",
    "SetAside",
    "latest_rule_year",
    "load_rule_year",
    "load_rules",
    "roll_up",
]
