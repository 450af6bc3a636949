"""Start a new calendar year's rule file from the latest one (``fhirbridge billing rules
new-year 2027``).

CMS publishes each year's Physician Fee Schedule final rule in November; until someone has read
it, the best guess for a new year is the last year's rules, marked as unchecked. So the new
file is the newest earlier year's file with ``rule_year`` and the title changed, and every
program, code, add-on and exclusion flagged ``verify: true`` with a note saying what it was
carried over from. An existing file is never overwritten, and the file written must load with
``load_rule_year``; otherwise it is removed again and the error raised.

The YAML is written anew (comments of the old file are not carried over; the header says where
the content came from).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fhirbridge.billing.errors import BillingError, RuleYearMissing
from fhirbridge.billing.loader import (
    DEFAULT_RULES_DIR,
    available_rule_years,
    load_rule_year,
    rule_file,
)
from fhirbridge.datafiles import read_yaml

__all__ = ["RuleYearExists", "start_rule_year"]


class RuleYearExists(BillingError):
    def __init__(self, year: int, path: Path) -> None:
        self.year = year
        self.path = path
        super().__init__(f"{path} already exists: CY{year} has rules; edit that file instead")


def start_rule_year(year: int, *, rules_dir: Path = DEFAULT_RULES_DIR) -> tuple[Path, int]:
    """Write ``rules_dir/cy{year}.yaml`` from the newest year before it (or, with none before,
    the newest there is); the path written and the year copied.

    Raises RuleYearExists when the file is there already, RuleYearMissing when there is no
    year to start from, RuleFileError when the result does not load (nothing is left behind).
    """
    target = rule_file(year, rules_dir=rules_dir)
    if target.exists():
        raise RuleYearExists(year, target)
    years = available_rule_years(rules_dir=rules_dir)
    earlier = [y for y in years if y < year]
    if not years:
        raise RuleYearMissing(year, target)
    source_year = (earlier or years)[-1]
    source = rule_file(source_year, rules_dir=rules_dir)
    data = carried_over(read_yaml(source).data, source_year=source_year, year=year)
    header = (
        f"# Care-management billing rules for calendar year {year}, started from "
        f"{source.name} by `fhirbridge billing rules new-year {year}`.\n"
        f"# Every entry is flagged `verify: true`: check each against the CY{year} Physician "
        "Fee Schedule final rule,\n# then set `verify: false` (or drop it) and rewrite the "
        "note. Format: mappings/billing/README.md.\n"
    )
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    # "x" refuses a file created meanwhile rather than overwriting it.
    try:
        with target.open("x", encoding="utf-8") as out:
            out.write(header + body)
    except FileExistsError:
        raise RuleYearExists(year, target) from None
    try:
        load_rule_year(year, rules_dir=rules_dir)
    except BillingError:
        target.unlink()
        raise
    return target, source_year


def carried_over(data: dict[str, Any], *, source_year: int, year: int) -> dict[str, Any]:
    """``data`` (a rule-year document) as the start of ``year``: every entry to verify."""
    result = dict(data)
    result["rule_year"] = year
    title = str(data.get("title", ""))
    result["title"] = (
        title.replace(f"CY{source_year}", f"CY{year}")
        if f"CY{source_year}" in title
        else f"CY{year} care-management codes"
    )
    reason = (
        f"carried over unchecked from CY{source_year}: confirm it in the CY{year} "
        "Physician Fee Schedule final rule"
    )

    def flagged(entry: Any) -> Any:
        if not isinstance(entry, dict):
            return entry
        note = entry.get("note")
        marked = dict(entry)
        marked["verify"] = True
        marked["note"] = f"{reason}. Before: {note}" if note else reason
        return marked

    programs = data.get("programs") or {}
    result["programs"] = {name: flagged(rule) for name, rule in programs.items()}
    codes: dict[str, Any] = {}
    for code, rule in (data.get("codes") or {}).items():
        marked = flagged(rule)
        if isinstance(marked, dict) and isinstance(marked.get("add_on"), dict):
            marked["add_on"] = flagged(marked["add_on"])
        codes[str(code)] = marked
    result["codes"] = codes
    exclusions = data.get("exclusions") or {}
    result["exclusions"] = {name: flagged(rule) for name, rule in exclusions.items()}
    return result
