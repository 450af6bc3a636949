"""``GET /exports/{type}`` streams NDJSON: every parameter is checked, and the first page read,
before the first byte, so those errors are problem documents; an error after the 200 went out
breaks the stream off, and a client reading it over a real connection gets an error, never a
complete-looking short export."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import fhirbridge.bulk.exporter as exporter
from fhirbridge.persistence.scratch import Backend
from tests.api.live_server import served
from tests.api.support import Tokens, billing

ENROLLMENTS = 4  # in fixtures/api/caseload.yaml, one EpisodeOfCare each


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    return backend


@pytest.fixture
def server(app: FastAPI) -> Iterator[httpx.Client]:
    """A real uvicorn serving the API caseload."""
    with served(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


@pytest.fixture
def billing_headers(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**billing())


def _failing_from(call: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the ``call``-th exported resource (1-based) fails."""
    build = exporter._resource
    calls = 0

    def failing(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls >= call:
            raise RuntimeError("cannot map the record")
        return build(*args, **kwargs)

    monkeypatch.setattr(exporter, "_resource", failing)


def test_a_complete_export_ends_cleanly(
    server: httpx.Client, billing_headers: dict[str, str]
) -> None:
    response = server.get("/exports/EpisodeOfCare", headers=billing_headers)

    assert response.status_code == 200
    assert len([json.loads(line) for line in response.text.splitlines()]) == ENROLLMENTS


def test_an_error_mid_stream_breaks_the_stream_off_so_the_client_sees_an_error(
    server: httpx.Client, billing_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_from(2, monkeypatch)
    received: list[bytes] = []

    with server.stream("GET", "/exports/EpisodeOfCare", headers=billing_headers) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            received.extend(response.iter_bytes())

    # What came before the error, and nothing after.
    assert len(b"".join(received).splitlines()) == 1


def test_an_error_mid_stream_is_logged_by_class_and_route_only(
    server: httpx.Client,
    billing_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _failing_from(2, monkeypatch)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(httpx.RemoteProtocolError):
        server.get("/exports/EpisodeOfCare", headers=billing_headers)

    ours = [r.getMessage() for r in caplog.records if r.name.startswith("fhirbridge")]
    assert "unhandled RuntimeError on GET /exports/{resource_type}" in ours
    assert "cannot map the record" not in caplog.text
    assert all(r.exc_info is None for r in caplog.records)


def test_an_error_before_the_first_byte_is_a_500_problem_not_a_broken_200(
    server: httpx.Client, billing_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_from(1, monkeypatch)

    response = server.get("/exports/EpisodeOfCare", headers=billing_headers)

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"


def test_after_a_broken_stream_a_new_connection_serves_the_next_request(
    server: httpx.Client, billing_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_from(2, monkeypatch)
    with pytest.raises(httpx.RemoteProtocolError):
        server.get("/exports/EpisodeOfCare", headers=billing_headers)
    monkeypatch.undo()

    response = server.get("/exports/EpisodeOfCare", headers=billing_headers)

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "0001-01-01"}, "query.since"),
        ({"since": "9999-12-31T23:59:59+14:00"}, "query.since"),
        ({"since": "yesterday"}, "query.since"),
        ({"program": "XYZ"}, "query.program"),
        ({"team": "north\x00"}, "query.team"),
    ],
)
def test_a_bad_parameter_is_a_422_problem_before_any_byte_is_streamed(
    server: httpx.Client, billing_headers: dict[str, str], query: dict[str, str], field: str
) -> None:
    response = server.get("/exports/EpisodeOfCare", params=query, headers=billing_headers)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in {error["field"] for error in response.json()["errors"]}
