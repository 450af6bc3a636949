"""What FHIR or the database cannot hold is refused with a 422 naming the field, on SQLite and
PostgreSQL alike, and nothing is stored: control characters, lone surrogates, dates outside
1900-01-01..2100-12-31, lengths no column holds, in bodies, path ids and query parameters."""

from __future__ import annotations

import importlib
import pkgutil
import re
import types
import typing
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

import fhirbridge.api.schemas as schemas
from fhirbridge.api.schemas._base import Incoming
from fhirbridge.persistence.scratch import Backend
from tests.api.support import (
    Tokens,
    billing,
    care_manager,
    count_rows,
    time_entry_body,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    return backend


@pytest.fixture
def nora(tokens: Tokens) -> dict[str, str]:
    return tokens.headers(**care_manager())


def _fields(response: Any) -> set[str]:
    return {error["field"] for error in response.json()["errors"]}


def _refused(response: Any, *fields: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert set(fields) <= _fields(response)


# -- bodies ----------------------------------------------------------------------------------


def test_a_nul_in_free_text_is_refused_naming_the_field_and_nothing_is_stored(
    client: TestClient, nora: dict[str, str], database_url: str
) -> None:
    before = count_rows(database_url, "time_entries")

    response = client.post("/time-entries", json=time_entry_body(notes="a\x00b"), headers=nora)

    _refused(response, "notes")
    assert count_rows(database_url, "time_entries") == before


@pytest.mark.parametrize("character", ["\x01", "\x08", "\x0b", "\x1b", "\x1f", "\x7f"])
def test_control_characters_in_free_text_are_refused(
    client: TestClient, nora: dict[str, str], character: str
) -> None:
    response = client.post(
        "/time-entries", json=time_entry_body(notes=f"call{character}back"), headers=nora
    )

    _refused(response, "notes")


def test_tabs_and_line_breaks_in_free_text_are_kept(
    client: TestClient, nora: dict[str, str]
) -> None:
    notes = "called:\tno answer\r\nleft a message\n"

    response = client.post("/time-entries", json=time_entry_body(notes=notes), headers=nora)

    assert response.status_code == 201, response.text
    assert response.json()["notes"] == notes


def test_a_lone_surrogate_is_refused(client: TestClient, nora: dict[str, str]) -> None:
    body = b'{"patient_id": "pat-north-1", "description": "x\\ud800y"}'

    response = client.post(
        "/goals", content=body, headers={**nora, "Content-Type": "application/json"}
    )

    _refused(response, "description")


def test_a_tab_in_an_id_is_refused(client: TestClient, nora: dict[str, str]) -> None:
    response = client.post(
        "/time-entries", json=time_entry_body(patient_id="pat-north\t1"), headers=nora
    )

    _refused(response, "patient_id")


def test_an_id_longer_than_its_column_is_refused(client: TestClient, nora: dict[str, str]) -> None:
    response = client.post("/time-entries", json=time_entry_body(patient_id="p" * 65), headers=nora)

    _refused(response, "patient_id")


def test_free_text_over_ten_thousand_characters_is_refused(
    client: TestClient, nora: dict[str, str]
) -> None:
    response = client.post("/time-entries", json=time_entry_body(notes="x" * 10_001), headers=nora)

    _refused(response, "notes")


def test_empty_free_text_is_refused_as_fhir_strings_are_never_empty(
    client: TestClient, nora: dict[str, str]
) -> None:
    response = client.post("/time-entries", json=time_entry_body(notes=""), headers=nora)

    _refused(response, "notes")


@pytest.mark.parametrize(
    "instant", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "1899-12-31T23:59:59Z"]
)
def test_a_time_entry_outside_1900_to_2100_is_refused_naming_the_field(
    client: TestClient, nora: dict[str, str], instant: str
) -> None:
    response = client.post("/time-entries", json=time_entry_body(start=instant), headers=nora)

    _refused(response, "start")


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "2101-01-01"])
def test_a_day_outside_1900_to_2100_is_refused_naming_the_field(
    client: TestClient, nora: dict[str, str], day: str
) -> None:
    response = client.post(
        "/care-plans", json={"patient_id": "pat-north-1", "start": day}, headers=nora
    )

    _refused(response, "start")


def test_the_range_bounds_are_accepted(client: TestClient, nora: dict[str, str]) -> None:
    response = client.post(
        "/care-plans",
        json={"patient_id": "pat-north-1", "start": "1900-01-01", "end": "2100-12-31"},
        headers=nora,
    )

    assert response.status_code == 201, response.text


def test_a_nested_field_is_named_by_its_json_path(client: TestClient, nora: dict[str, str]) -> None:
    body = {
        "patient_id": "pat-north-1",
        "kind": "specialist",
        "service": {"system": "snomed", "code": "306206005", "display": "x\x00"},
    }

    response = client.post("/referrals", json=body, headers=nora)

    _refused(response, "service.display")


def _incoming_models() -> list[type[Incoming]]:
    for module in pkgutil.iter_modules(schemas.__path__):
        importlib.import_module(f"{schemas.__name__}.{module.name}")
    found: list[type[Incoming]] = []
    pending = list(Incoming.__subclasses__())
    while pending:
        model = pending.pop()
        found.append(model)
        pending.extend(model.__subclasses__())
    return sorted(found, key=lambda model: model.__name__)


def _takes_text(annotation: Any) -> tuple[bool, bool]:
    """(a string somewhere in it, inside a list)"""
    if annotation is str:
        return True, False
    origin = typing.get_origin(annotation)
    if origin is list:
        text, _ = _takes_text(typing.get_args(annotation)[0])
        return text, text
    if origin is typing.Annotated:
        return _takes_text(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        results = [_takes_text(arg) for arg in typing.get_args(annotation)]
        return any(t for t, _ in results), any(listed for _, listed in results)
    return False, False


TEXT_FIELDS = [
    (model, name, listed)
    for model in _incoming_models()
    for name, field in model.model_fields.items()
    for text, listed in [_takes_text(field.annotation)]
    if text
]


@pytest.mark.parametrize(
    ("model", "name", "listed"),
    TEXT_FIELDS,
    ids=[f"{model.__name__}.{name}" for model, name, _ in TEXT_FIELDS],
)
def test_every_string_field_of_every_request_body_refuses_a_nul(
    model: type[Incoming], name: str, listed: bool
) -> None:
    value: Any = ["ok\x00"] if listed else "ok\x00"
    with pytest.raises(ValidationError) as caught:
        model.model_validate({name: value})

    assert any(error["loc"][0] == name for error in caught.value.errors())


def test_the_schemas_have_string_fields_to_check() -> None:
    # Guards the test above against finding nothing.
    assert len(TEXT_FIELDS) > 20


# -- path and query parameters -------------------------------------------------------------


def _operations_with_path_parameters(app: FastAPI) -> list[tuple[str, str, list[str]]]:
    """(method, path template, its parameters) of every operation the API documents."""
    return [
        (method.upper(), path, re.findall(r"{(\w+)}", path))
        for path, item in app.openapi()["paths"].items()
        if "{" in path
        for method in item
    ]


def test_every_route_refuses_a_nul_in_a_path_parameter_naming_it(
    app: FastAPI, client: TestClient, tokens: Tokens
) -> None:
    admin = tokens.headers(sub="user-admin", roles=["admin"])
    operations = _operations_with_path_parameters(app)
    assert len(operations) > 10

    for method, template, parameters in operations:
        path = re.sub(r"{\w+}", "%00", template)

        response = client.request(method, path, headers=admin)

        assert response.status_code == 422, (method, template, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert {f"path.{name}" for name in parameters} <= _fields(response)


def test_a_path_id_longer_than_any_id_is_refused_naming_it(
    client: TestClient, nora: dict[str, str]
) -> None:
    response = client.get(f"/time-entries/{'e' * 65}", headers=nora)

    _refused(response, "path.entry_id")


def test_a_path_id_of_64_characters_is_looked_up(client: TestClient, nora: dict[str, str]) -> None:
    response = client.get(f"/time-entries/{'e' * 64}", headers=nora)

    assert response.status_code == 404


def test_a_control_character_in_a_query_value_is_refused_naming_it(
    client: TestClient, nora: dict[str, str]
) -> None:
    escaped = quote("pat-north-1\x1b")

    response = client.get(f"/referrals?patient_id={escaped}", headers=nora)

    _refused(response, "query.patient_id")


def test_a_query_parameter_name_that_cannot_be_printed_is_not_quoted_back(
    client: TestClient, nora: dict[str, str]
) -> None:
    response = client.get("/referrals?patient_id=pat-north-1&x%00y=1", headers=nora)

    _refused(response, "query")
    assert "x\x00y" not in response.text


@pytest.mark.parametrize(
    "since", ["0001-01-01", "9999-12-31", "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"]
)
def test_an_export_since_outside_1900_to_2100_is_refused_before_streaming(
    client: TestClient, tokens: Tokens, since: str
) -> None:
    response = client.get(
        "/exports/Encounter", params={"since": since}, headers=tokens.headers(**billing())
    )

    _refused(response, "query.since")


def test_an_export_team_longer_than_a_team_is_refused(client: TestClient, tokens: Tokens) -> None:
    response = client.get(
        "/exports/Encounter", params={"team": "t" * 65}, headers=tokens.headers(**billing())
    )

    _refused(response, "query.team")
