"""Reading a server's refusal of a transaction: its size, or one entry, or neither.

Only a refusal for the size makes the worker send smaller transactions; only one that names a
single entry condemns that entry without narrowing the transaction down by halves.
"""

from __future__ import annotations

import json

import pytest

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.fhir import Outcome, RequestInfo, StatusError
from fhirbridge.sync.send import named_entry, size_refusal

REFUSALS = PROJECT_ROOT / "fixtures" / "sync" / "refusals"
ENTRIES = [[f"urn:uuid:entry-{i}", f"Goal/goal-{i}"] for i in range(27)]


def _refusal(name: str | None, status: int = 400) -> StatusError:
    outcome = Outcome.from_json(json.loads((REFUSALS / name).read_text())) if name else None
    request = RequestInfo("POST", "http://127.0.0.1/fhir")
    return StatusError("transaction refused", request=request, status=status, outcome=outcome)


def test_a_refusal_naming_the_servers_limit_is_answered_with_transactions_of_that_size() -> None:
    assert size_refusal(_refusal("too_costly_entries.json"), 27, ENTRIES) == 8


def test_a_limit_on_updates_is_a_limit_on_the_transaction_too() -> None:
    assert size_refusal(_refusal("too_many_updates.json"), 200, ENTRIES) == 50


@pytest.mark.parametrize(
    ("refusal", "status"), [("size_unstated.json", 400), (None, 413)], ids=["too-long", "413"]
)
def test_a_size_refusal_that_names_no_number_halves_the_transaction(
    refusal: str | None, status: int
) -> None:
    assert size_refusal(_refusal(refusal, status), 27, ENTRIES) == 13


def test_a_single_entry_is_never_too_large_a_transaction() -> None:
    assert size_refusal(_refusal("too_costly_entries.json"), 1, ENTRIES[:1]) is None


@pytest.mark.parametrize("refusal", ["invalid_entry.json", "dangling_reference.json"])
def test_a_refusal_of_content_is_no_size_refusal(refusal: str) -> None:
    assert size_refusal(_refusal(refusal), 27, ENTRIES) is None


def test_a_refusal_naming_an_entry_by_position_names_that_entry() -> None:
    assert named_entry(_refusal("invalid_entry.json"), ENTRIES) == 3


def test_a_refusal_naming_a_resource_of_the_transaction_names_its_entry() -> None:
    data = json.loads((REFUSALS / "invalid_entry.json").read_text())
    data["issue"][0].pop("expression")
    data["issue"][0]["diagnostics"] = "Goal/goal-12: lifecycleStatus is required"
    refusal = StatusError(
        "refused",
        request=RequestInfo("POST", "http://127.0.0.1/fhir"),
        status=422,
        outcome=Outcome.from_json(data),
    )
    assert named_entry(refusal, ENTRIES) == 12


def test_a_missing_reference_target_names_no_entry_of_ours() -> None:
    assert named_entry(_refusal("dangling_reference.json"), ENTRIES) is None
