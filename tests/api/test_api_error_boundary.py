"""No error reaches the ASGI server: an unexpected one is a 500 problem on a connection that stays
open, logged once by method, route template and error class (no message, no traceback)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from fhirbridge.persistence.scratch import Backend
from fhirbridge.persistence.store import Store
from tests.api.live_server import served
from tests.api.support import Tokens, care_manager, time_entry_body

SECRET_MESSAGE = "the message may quote patient data"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    return backend


@pytest.fixture
def server(app: FastAPI) -> Iterator[httpx.Client]:
    """One client, one keep-alive connection, to a real uvicorn."""
    with served(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def _failing_save(self: Store, entity: object, **_: object) -> list[int]:
    raise RuntimeError(SECRET_MESSAGE)


@pytest.fixture
def failing_store(server: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every save fails, once the caseload is stored and the server runs."""
    monkeypatch.setattr(Store, "save", _failing_save)


@pytest.fixture
def nora(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**care_manager())


def _local_port(response: httpx.Response) -> int:
    stream = response.extensions["network_stream"]
    port: int = stream.get_extra_info("client_addr")[1]
    return port


@pytest.mark.usefixtures("failing_store")
def test_an_unexpected_error_is_a_500_problem(server: httpx.Client, nora: dict[str, str]) -> None:
    response = server.post("/time-entries", json=time_entry_body(), headers=nora)

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "https://fhirbridge.dev/problems/internal-error",
        "title": "Internal error",
        "status": 500,
        "detail": "unexpected error",
        "errors": [],
    }


@pytest.mark.usefixtures("failing_store")
def test_after_a_500_the_same_connection_serves_the_next_request(
    server: httpx.Client, nora: dict[str, str]
) -> None:
    failed = server.post("/time-entries", json=time_entry_body(), headers=nora)
    after = server.get("/health")

    assert (failed.status_code, after.status_code) == (500, 200)
    assert failed.headers.get("connection") != "close"
    assert _local_port(after) == _local_port(failed)


@pytest.mark.usefixtures("failing_store")
def test_an_unexpected_error_is_logged_once_by_method_route_and_class(
    server: httpx.Client, nora: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    server.post("/time-entries", json=time_entry_body(), headers=nora)

    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in problems] == ["unhandled RuntimeError on POST /time-entries"]
    assert problems[0].exc_info is None
    assert SECRET_MESSAGE not in caplog.text


def test_the_route_is_logged_by_its_template_not_the_path_sent(
    server: httpx.Client,
    nora: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    goal = server.post(
        "/goals", json={"patient_id": "pat-north-1", "description": "walk"}, headers=nora
    )
    assert goal.status_code == 201, goal.text
    monkeypatch.setattr(Store, "save", _failing_save)
    caplog.set_level(logging.ERROR)

    server.patch(f"/goals/{goal.json()['id']}", json={"description": "run"}, headers=nora)

    assert [r.getMessage() for r in caplog.records] == [
        "unhandled RuntimeError on PATCH /goals/{goal_id}"
    ]


def test_an_unknown_path_is_a_404_problem_on_the_same_connection(server: httpx.Client) -> None:
    missing = server.get("/no-such-thing")
    after = server.get("/health")

    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert _local_port(after) == _local_port(missing)


def test_a_body_over_the_limit_is_a_413_problem(server: httpx.Client, nora: dict[str, str]) -> None:
    body = b'{"notes": "' + b"x" * (4 * 1024 * 1024) + b'"}'

    response = server.post(
        "/time-entries", content=body, headers={**nora, "Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert response.json()["type"] == "https://fhirbridge.dev/problems/content-too-large"


def test_a_streamed_body_over_the_limit_is_a_413_problem(
    server: httpx.Client, nora: dict[str, str]
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"notes": "'
        for _ in range(5):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    response = server.post(
        "/time-entries", content=chunks(), headers={**nora, "Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert response.json()["type"] == "https://fhirbridge.dev/problems/content-too-large"


def test_the_access_line_names_the_route_template_and_status_not_the_patient(
    server: httpx.Client, nora: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server.get("/patients/pat-north-1/time-entries", headers=nora)
    # uvicorn's own access line is switched off by `serve` (tested there); fhirbridge's names
    # the route template.
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("fhirbridge")]
    assert "GET /patients/{patient_id}/time-entries 200" in ours
    assert not [line for line in ours if "pat-north-1" in line]
