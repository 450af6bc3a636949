"""What the property-based API tests share: the ids of real records (fixtures/api/caseload.yaml,
and fixtures/api/properties_seed.yaml created through the API), the schemathesis configuration
that feeds them (and plausible dates and months) to generated requests, and runs that record
every distinct failure instead of stopping at the first.

Recording instead of raising matters twice: one run reports every failure class at once, and
Hypothesis never replays a failing case against a database the run has changed since (which it
would report as a flaky test instead of as the failure).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import hypothesis.errors
import requests
import schemathesis
import yaml
from schemathesis import APIOperation, BaseSchema, Case, GenerationMode, Response
from schemathesis.core.result import Err
from schemathesis.errors import FailureGroup

from tests.api.support import FIXTURES, Tokens

# An admin of team north who is also a supervisor with a staff id: every route is open to it
# (exports need admin or billing, recording time needs a staff member), so generated requests
# reach the routes' logic instead of stopping at a 403.
ADMIN: dict[str, Any] = {
    "sub": "user-sup",
    "roles": ["admin", "supervisor"],
    "team": "north",
    "staff_id": "sup-north",
}
# Long enough for a whole run; the tests' own tokens live five minutes.
TOKEN_LIFETIME_SECONDS = 3600

# What every response is held to: no server error, and a status, media type and body the
# OpenAPI declares for the operation (so every problem a route answers must be declared).
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)

# Dates and instants around the test clock (2026-10-15T15:00Z), for fields of either kind
# (generated ones are mostly centuries away and stop at the 1900..2100 check), and the ends
# of the calendar, where applying a time zone overflows.
MOMENTS = (
    "2026-10-14T14:00:00Z",
    "2026-10-14T14:25:00Z",
    "2026-10-15T09:59:00-05:00",
    "2026-10-01",
    "2026-10-15",
    "2026-12-31",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31",
)
# Free text that FHIR or PostgreSQL cannot hold (NUL, other control characters), and text
# they can (right-to-left override, emoji, combining marks). No lone surrogate: schemathesis
# cannot encode one.
TEXTS = ("a\x00b", "bell\x07", "\x1b[31m", "\u202eevil", "ok \U0001f642", "e\u0301")
# Free-text fields get those less often than ids get real ones: generated text finds more.
TEXT_PROBABILITY = 0.3
# Ids for new patients and care team members (the first use creates, later ones conflict),
# and references of the kinds the EHR side holds.
NEW_IDS = ("fuzz-1", "fuzz-2", "fuzz-3")
REFERENCES = (
    "Patient/ehr-9001",
    "Practitioner/pr-99",
    "Condition/ehr-c-1001",
    "Condition/ehr-c-1002",
)
# Months with rule files and data, a month without either, and both ends of the rule years.
MONTHS = ("2026-10", "2026-09", "2026-01", "2025-12", "2027-01", "1999-07")

# Which dictionary feeds which parameters (path or query, by name) and body fields (by path);
# a name starting with ``body.`` feeds the body field only.
_STAFF = ("staff_id", "member_id", "owner_id", "requester_id", "author_id", "care_manager_id")
_FED: dict[str, tuple[str, ...]] = {
    "patient_id": ("patient_id",),
    "staff_id": (*_STAFF, "billing_practitioner_id", "consent.recorded_by_id"),
    "enrollment_id": ("enrollment_id",),
    "consent_id": ("consent_id",),
    "care_plan_id": ("care_plan_id",),
    "goal_id": ("goal_id", "goal_ids[*]"),
    "task_id": ("task_id",),
    "entry_id": ("entry_id",),
    "referral_id": ("referral_id",),
    "record_id": ("record_id",),
    "team": ("team",),
    # Body only: schemathesis cannot bind a dictionary to a query parameter whose schema is a
    # reference or null (exports' ``program``).
    "program": ("body.program",),
    "month": ("month",),
    "moment": ("start", "end", "due_start", "due_end", "given_on", "consent.given_on"),
    "new_id": ("body.id",),
    "reference": ("body.ehr_reference", "body.practitioner_reference", "body.conditions[*]"),
    "text": (
        *("notes", "description", "title", "narrative", "reason", "status_reason", "name"),
        *("body.service.display", "body.performer_display"),
    ),
}
_RECORDS = ("enrollment_id", "consent_id", "care_plan_id", "goal_id", "task_id", "entry_id")


def admin_headers(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**ADMIN, exp=int(time.time()) + TOKEN_LIFETIME_SECONDS)


def caseload_ids() -> dict[str, list[str]]:
    """The ids of fixtures/api/caseload.yaml, by the parameter they fill."""
    data = yaml.safe_load((FIXTURES / "caseload.yaml").read_text())
    enrollments = data["enrollments"]
    return {
        "patient_id": [p["id"] for p in data["patients"]],
        "staff_id": [s["id"] for s in data["staff"]],
        "enrollment_id": [e["id"] for e in enrollments],
        "consent_id": [e["consent"]["id"] for e in enrollments],
        "team": sorted({p["team"] for p in data["patients"]}),
        "program": sorted({e["program"] for e in enrollments}),
    }


def seed_records(base_url: str, headers: dict[str, str]) -> dict[str, list[str]]:
    """Create fixtures/api/properties_seed.yaml through the API; the new ids by parameter."""
    seeds = yaml.safe_load((FIXTURES / "properties_seed.yaml").read_text())["requests"]
    created: dict[str, list[str]] = {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        for seed in seeds:
            response = client.post(seed["path"], json=seed["body"])
            assert response.status_code == 201, f"{seed['path']}: {response.text}"
            if "feeds" in seed:
                created.setdefault(seed["feeds"], []).append(response.json()["id"])
    return created


def known_ids(base_url: str, headers: dict[str, str]) -> dict[str, list[str]]:
    """Every real id the fuzzer may use: the caseload's and the seeded records'."""
    ids = caseload_ids()
    ids.update(seed_records(base_url, headers))
    ids["record_id"] = [record for kind in _RECORDS for record in ids[kind]]
    return ids


def fuzzing_config(
    ids: dict[str, list[str]],
    *,
    headers: dict[str, str],
    seed: int,
    probability: float,
) -> schemathesis.Config:
    """Schemathesis settings: deterministic generation from ``seed``, the given credentials on
    every request, the checks of ``CHECKS``, every id, date and month parameter drawn from
    ``ids``, ``MOMENTS`` and ``MONTHS`` with ``probability`` (else generated), and free text
    from ``TEXTS`` with ``TEXT_PROBABILITY``."""
    values = {
        **ids,
        "month": list(MONTHS),
        "moment": list(MOMENTS),
        "new_id": list(NEW_IDS),
        "reference": list(REFERENCES),
        "text": list(TEXTS),
    }
    parameters: dict[str, Any] = {}
    for dictionary, names in _FED.items():
        chance = TEXT_PROBABILITY if dictionary == "text" else probability
        binding = {"dictionary": dictionary, "probability": chance}
        for name in names:
            if name.startswith("body."):
                parameters[name] = binding
                continue
            if "." not in name and "[" not in name:
                parameters[name] = binding  # path and query parameters
            parameters[f"body.{name}"] = binding
    return schemathesis.Config.from_dict(
        {
            "seed": seed,
            "headers": headers,
            "generation": {
                "deterministic": True,
                "database": "none",
                # The credentials are ours (``headers``); a generated X-API-Key would only
                # replace them with a refused one.
                "with-security-parameters": False,
            },
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "dictionaries": {name: {"values": values[name]} for name in _FED},
            "parameters": parameters,
        }
    )


@dataclass
class Findings:
    """Every distinct failure of a run (by operation, failure kind and status, 0 for no
    complete answer) with the first request that showed it, and how many answers of each
    status each operation gave."""

    failures: dict[tuple[str, str, int], str] = field(default_factory=dict)
    answers: dict[str, Counter[int]] = field(default_factory=dict)

    def check(self, case: Case[Any], response: Response, validate: Callable[[], None]) -> None:
        self.answers.setdefault(case.operation.label, Counter())[response.status_code] += 1
        try:
            validate()
        except FailureGroup as group:
            for failure in group.exceptions:
                # A 5xx is one failure, whatever else its answer breaks (an undeclared status).
                kind = "Server error" if response.status_code >= 500 else failure.title
                key = (case.operation.label, kind, response.status_code)
                self.failures.setdefault(key, _described(failure.message, case))

    def broken(self, case: Case[Any], error: requests.RequestException) -> None:
        """A request that got no complete answer (a dropped connection, a cut-off stream)."""
        self.answers.setdefault(case.operation.label, Counter())[0] += 1
        key = (case.operation.label, f"No complete answer ({type(error).__name__})", 0)
        self.failures.setdefault(key, _described(str(error), case))

    def report(self) -> str:
        lines = [f"{len(self.failures)} distinct failures:"]
        for (operation, title, status), example in sorted(self.failures.items()):
            lines.append(f"- {operation} -> {status}: {title}\n{example}")
        return "\n".join(lines)

    def operations_answered(self, status_class: int) -> set[str]:
        """The operations that gave at least one answer of ``status_class`` (2 for 2xx)."""
        return {
            operation
            for operation, statuses in self.answers.items()
            if any(status // 100 == status_class for status in statuses)
        }


def _described(message: str, case: Case[Any]) -> str:
    shown = message if len(message) <= 600 else message[:600] + "..."
    return "\n".join(f"    {line}" for line in [*shown.splitlines(), case.as_curl_command()])


def _settings(max_examples: int, **more: Any) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        # Generation only: failures are recorded, never raised, so there is nothing to shrink.
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
        **more,
    )


def fuzz_operations(schema: BaseSchema, *, seed: int, valid: int, invalid: int = 0) -> Findings:
    """Send every operation of ``schema`` ``valid`` requests generated from its schemas and
    ``invalid`` ones that break them, each answer checked against the document."""
    findings = Findings()
    budget = [(GenerationMode.POSITIVE, valid), (GenerationMode.NEGATIVE, invalid)]
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise result.err()  # an operation the document describes unusably
            operation = result.ok()
            for mode, examples in budget:
                if examples:
                    _fuzz(operation, mode, session, findings, seed=seed, max_examples=examples)
    return findings


def _fuzz(
    operation: APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    session: requests.Session,
    findings: Findings,
    *,
    seed: int,
    max_examples: int,
) -> None:
    @hypothesis.seed(seed)
    @_settings(max_examples)
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def send(case: Case[Any]) -> None:
        try:
            response = case.call(session=session)
        except requests.RequestException as error:
            findings.broken(case, error)
            return
        findings.check(case, response, lambda: case.validate_response(response))

    try:
        send()
    except hypothesis.errors.Unsatisfiable:
        # Nothing of the operation can be made invalid (no parameters, no body): no requests.
        if mode is not GenerationMode.NEGATIVE:
            raise


def run_linked_calls(schema: BaseSchema, *, scenarios: int, steps: int) -> Findings:
    """``scenarios`` sequences of up to ``steps`` calls where ids a response returns fill the
    next request (the links schemathesis infers from the document's schemas); derandomized,
    as a state machine takes no seed."""
    findings = Findings()
    machine = schema.as_state_machine()

    class Recorded(machine):  # type: ignore[misc, valid-type]
        def step(self, input: Any) -> Any:
            try:
                return super().step(input)
            except requests.RequestException as error:
                findings.broken(input.case, error)
                return None  # no response, so nothing for later steps to use

        def validate_response(
            self,
            response: Response,
            case: Case[Any],
            additional_checks: list[Any] | None = None,
            **kwargs: Any,
        ) -> None:
            def validate() -> None:
                super(Recorded, self).validate_response(response, case, additional_checks, **kwargs)

            findings.check(case, response, validate)

    # Which rules can run depends on what the server answered before; when Hypothesis replays
    # a prefix of choices against a server that has moved on, it stops the run. Every call
    # made until then has been checked.
    with contextlib.suppress(hypothesis.errors.FlakyStrategyDefinition):
        Recorded.run(settings=_settings(scenarios, stateful_step_count=steps, derandomize=True))
    return findings
