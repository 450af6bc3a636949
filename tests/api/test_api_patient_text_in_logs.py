"""Patient text never reaches the logs, whatever goes wrong with a write: every free-text field of
every write route (fixtures/api/hostile/free_text_writes.yaml) carries a unique marker while the
request is refused (a NUL, a date out of range) or fails inside (the store raising an error that
quotes the record), against a real uvicorn, with every logger capturing at DEBUG."""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from fhirbridge.persistence.scratch import Backend
from fhirbridge.persistence.store import Store
from tests.api.live_server import served
from tests.api.support import FIXTURES, FakeClock, Tokens, care_manager, time_entry_body

WRITES: list[dict[str, Any]] = yaml.safe_load(
    (FIXTURES / "hostile" / "free_text_writes.yaml").read_text()
)
LOGGERS = ("", "sqlalchemy", "uvicorn", "uvicorn.error", "uvicorn.access", "fhirbridge")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    return backend


@pytest.fixture
def marker() -> str:
    return f"PATIENT-TEXT-{uuid.uuid4().hex}"


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture
def server(app: FastAPI) -> Iterator[httpx.Client]:
    with served(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


@pytest.fixture
def records(server: httpx.Client, tokens: Tokens, clock: FakeClock) -> dict[str, str]:
    """One record of each kind the routes edit, made without any marker; a timer running for
    cm-north-2 long enough to be stopped."""
    nora = tokens.headers(**care_manager())
    made = {
        "time_entry": server.post("/time-entries", json=time_entry_body(), headers=nora),
        "care_plan": server.post("/care-plans", json={"patient_id": "pat-north-1"}, headers=nora),
        "goal": server.post(
            "/goals", json={"patient_id": "pat-north-1", "description": "walk"}, headers=nora
        ),
        "care_task": server.post(
            "/care-tasks", json={"patient_id": "pat-north-1", "kind": "follow-up"}, headers=nora
        ),
        "referral": server.post("/referrals", json=_referral(), headers=nora),
    }
    timer = server.post(
        "/timers",
        json=_body(_write("start a timer")["body"], "walk"),
        headers=tokens.headers(**care_manager("cm-north-2")),
    )
    assert timer.status_code == 201, timer.text
    clock.advance(minutes=10)
    for response in made.values():
        assert response.status_code == 201, response.text
    return {kind: response.json()["id"] for kind, response in made.items()}


def _write(name: str) -> dict[str, Any]:
    return next(write for write in WRITES if write["name"] == name)


def _referral() -> dict[str, Any]:
    body: dict[str, Any] = _body(_write("send a referral")["body"], "food")
    return body


def _body(template: Any, text: str) -> Any:
    if template == "$MARKER":
        return text
    if isinstance(template, dict):
        return {key: _body(value, text) for key, value in template.items()}
    if isinstance(template, list):
        return [_body(value, text) for value in template]
    return template


def _free_text_fields(template: Any, prefix: str = "") -> set[str]:
    if template == "$MARKER":
        return {prefix}
    if isinstance(template, dict):
        return {
            field
            for key, value in template.items()
            for field in _free_text_fields(value, f"{prefix}.{key}" if prefix else key)
        }
    return set()


def _send(
    server: httpx.Client, tokens: Tokens, records: dict[str, str], write: dict[str, Any], body: Any
) -> httpx.Response:
    return server.request(
        write["method"],
        write["path"].format(**records),
        json=body,
        headers=tokens.headers(**care_manager(write["as"])),
    )


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Everything the log records hold: messages, arguments and tracebacks."""
    parts = [caplog.text]
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            parts.extend(traceback.format_exception(record.exc_info[1]))
    return "\n".join(parts)


def _dates_out_of_range(write: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    far = {field: "9999-12-31T23:00:00-05:00" for field in write.get("instants", [])}
    far.update({field: "0001-01-01" for field in write.get("days", [])})
    return {**body, **far}


@pytest.mark.parametrize("write", WRITES, ids=[w["name"] for w in WRITES])
def test_a_nul_in_free_text_is_refused_naming_every_field_and_logged_nowhere(
    server: httpx.Client,
    tokens: Tokens,
    records: dict[str, str],
    everything_logged: pytest.LogCaptureFixture,
    marker: str,
    write: dict[str, Any],
) -> None:
    response = _send(server, tokens, records, write, _body(write["body"], f"{marker}\x00"))

    assert response.status_code == 422, response.text
    named = {error["field"] for error in response.json()["errors"]}
    assert _free_text_fields(write["body"]) <= named
    assert marker not in _logged(everything_logged)


@pytest.mark.parametrize(
    "write", [w for w in WRITES if w.get("days") or w.get("instants")], ids=lambda w: w["name"]
)
def test_dates_out_of_range_are_refused_naming_each_and_the_text_is_logged_nowhere(
    server: httpx.Client,
    tokens: Tokens,
    records: dict[str, str],
    everything_logged: pytest.LogCaptureFixture,
    marker: str,
    write: dict[str, Any],
) -> None:
    body = _dates_out_of_range(write, _body(write["body"], marker))

    response = _send(server, tokens, records, write, body)

    assert response.status_code == 422, response.text
    named = {error["field"] for error in response.json()["errors"]}
    assert {*write.get("days", []), *write.get("instants", [])} <= named
    assert marker not in _logged(everything_logged)


@pytest.mark.parametrize("write", WRITES, ids=[w["name"] for w in WRITES])
def test_an_internal_error_quoting_the_record_is_a_500_with_no_patient_text_in_the_logs(
    server: httpx.Client,
    tokens: Tokens,
    records: dict[str, str],
    everything_logged: pytest.LogCaptureFixture,
    marker: str,
    write: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def failing_save(self: Store, entity: object, **_: object) -> list[int]:
        raise RuntimeError(f"cannot save {entity!r}")  # quotes the record, marker and all

    monkeypatch.setattr(Store, "save", failing_save)

    response = _send(server, tokens, records, write, _body(write["body"], marker))

    assert response.status_code == 500, response.text
    assert response.json()["type"].endswith("/internal-error")
    assert marker not in response.text
    assert marker not in _logged(everything_logged)
