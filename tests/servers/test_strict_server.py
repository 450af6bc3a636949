"""The strict FHIR server behaves as its quirks say, in front of a real sekmet.

Each test uses identifiers of its own, so tests sharing the session's strict server never see
each other's resources.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import FIXTURES, ROOT
from tests.servers.fixtures import StrictServerFactory
from tests.servers.strict import Quirks, StrictFhirServer

pytestmark = pytest.mark.integration

Json = dict[str, Any]
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
SYSTEM = "urn:fhirbridge:test:strict-server"


@pytest.fixture
def fhir(strict_fhir_server: StrictFhirServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=strict_fhir_server.base_url, headers=FHIR_JSON, timeout=30) as c:
        yield c


def _fixture(name: str) -> Json:
    data: Json = json.loads((FIXTURES / "servers" / name).read_text())
    return data


def _patient(value: str | None = None) -> Json:
    patient = _fixture("patient.json")
    patient["identifier"][0]["value"] = value or str(uuid.uuid4())
    return patient


def _goal(subject: str) -> Json:
    goal = _fixture("goal.json")
    goal["subject"]["reference"] = subject
    return goal


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _etag_version(etag: str) -> str:
    return etag.removeprefix("W/").strip('"')


def _conditional_creates(count: int, tag: str) -> Json:
    entries = []
    for i in range(count):
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": _patient(f"{tag}-{i}"),
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier={SYSTEM}|{tag}-{i}",
                },
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _updates(count: int) -> Json:
    entries = []
    for _ in range(count):
        rid = f"strict-{uuid.uuid4()}"
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {**_patient(), "id": rid},
                "request": {"method": "PUT", "url": f"Patient/{rid}"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _count(fhir: httpx.Client, query: str) -> int:
    bundle = fhir.get(f"Patient?{query}&_count=100").json()
    return len(bundle.get("entry") or [])


def _create(fhir: httpx.Client, resource: Json) -> httpx.Response:
    response = fhir.post(resource["resourceType"], json=resource)
    assert response.status_code == 201, response.text
    return response


def _outcome(response: httpx.Response) -> Json:
    body: Json = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "error"
    return body


# ---------------------------------------------------------------- opaque versions


def test_a_created_resource_has_a_uuid_version_in_body_etag_and_location(
    fhir: httpx.Client, strict_fhir_server: StrictFhirServer
) -> None:
    response = _create(fhir, _patient())

    version = response.json()["meta"]["versionId"]
    assert _is_uuid(version)
    assert response.headers["ETag"] == f'W/"{version}"'
    assert response.headers["Location"].endswith(f"/_history/{version}")
    assert response.headers["Location"].startswith(f"{strict_fhir_server.base_url}/Patient/")


def test_instance_history_lists_every_version_with_uuids_and_each_can_be_read_by_it(
    fhir: httpx.Client,
) -> None:
    patient = _create(fhir, _patient()).json()
    for family in ("Second", "Third"):
        patient["name"][0]["family"] = family
        patient = fhir.put(f"Patient/{patient['id']}", json=patient).json()

    history = fhir.get(f"Patient/{patient['id']}/_history").json()

    entries = history["entry"]
    versions = [e["resource"]["meta"]["versionId"] for e in entries]
    assert len(set(versions)) == 3
    assert all(_is_uuid(v) for v in versions)
    assert [_etag_version(e["response"]["etag"]) for e in entries] == versions
    families = [
        fhir.get(f"Patient/{patient['id']}/_history/{v}").json()["name"][0]["family"]
        for v in versions
    ]
    assert families == ["Third", "Second", "Strict"]


def test_type_history_has_uuid_versions(fhir: httpx.Client) -> None:
    _create(fhir, _patient())

    history = fhir.get("Patient/_history", params={"_count": 5}).json()

    assert history["entry"]
    for entry in history["entry"]:
        assert _is_uuid(_etag_version(entry["response"]["etag"]))
        if "resource" in entry:
            assert _is_uuid(entry["resource"]["meta"]["versionId"])


def test_a_read_answers_the_same_uuid_the_write_did(fhir: httpx.Client) -> None:
    created = _create(fhir, _patient())

    read = fhir.get(f"Patient/{created.json()['id']}")

    assert read.headers["ETag"] == created.headers["ETag"]
    assert read.json()["meta"]["versionId"] == created.json()["meta"]["versionId"]


def test_if_none_match_with_the_current_uuid_is_not_modified(fhir: httpx.Client) -> None:
    created = _create(fhir, _patient())

    response = fhir.get(
        f"Patient/{created.json()['id']}", headers={"If-None-Match": created.headers["ETag"]}
    )

    assert response.status_code == 304


def test_a_restarted_proxy_answers_the_same_version_ids(
    strict_fhir_server: StrictFhirServer, tmp_path: Path
) -> None:
    versions = tmp_path / "versions.jsonl"
    upstream = strict_fhir_server.upstream
    with StrictFhirServer(upstream, versions_file=versions) as before:
        created = httpx.post(f"{before.base_url}/Patient", json=_patient(), headers=FHIR_JSON)
    with StrictFhirServer(upstream, versions_file=versions) as after:
        read = httpx.get(f"{after.base_url}/Patient/{created.json()['id']}", headers=FHIR_JSON)

    assert read.headers["ETag"] == created.headers["ETag"]


def test_if_match_with_the_current_uuid_updates(fhir: httpx.Client) -> None:
    created = _create(fhir, _patient())
    patient = created.json()

    response = fhir.put(
        f"Patient/{patient['id']}", json=patient, headers={"If-Match": created.headers["ETag"]}
    )

    assert response.status_code == 200, response.text
    assert response.headers["ETag"] != created.headers["ETag"]


def test_if_match_with_a_stale_uuid_is_a_412_that_leaks_no_version_number(
    fhir: httpx.Client,
) -> None:
    created = _create(fhir, _patient())
    patient = created.json()
    fhir.put(f"Patient/{patient['id']}", json=patient)

    response = fhir.put(
        f"Patient/{patient['id']}", json=patient, headers={"If-Match": created.headers["ETag"]}
    )

    assert response.status_code == 412
    assert "current is" not in _outcome(response)["issue"][0]["diagnostics"]


def test_if_match_with_a_number_is_a_412(fhir: httpx.Client) -> None:
    patient = _create(fhir, _patient()).json()

    response = fhir.put(f"Patient/{patient['id']}", json=patient, headers={"If-Match": 'W/"1"'})

    assert response.status_code == 412
    _outcome(response)


def test_transaction_if_match_takes_uuids(fhir: httpx.Client) -> None:
    created = _create(fhir, _patient())
    patient = created.json()
    stale = created.headers["ETag"]

    def put(if_match: str) -> httpx.Response:
        entry = {
            "resource": patient,
            "request": {"method": "PUT", "url": f"Patient/{patient['id']}", "ifMatch": if_match},
        }
        return fhir.post(
            "", json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
        )

    first = put(stale)
    second = put(stale)

    assert first.status_code == 200, first.text
    new_etag = first.json()["entry"][0]["response"]["etag"]
    assert _is_uuid(_etag_version(new_etag))
    assert new_etag != stale
    assert second.status_code == 412


# ---------------------------------------------------------------- transaction size


def test_nine_conditional_entries_are_refused_as_too_costly_and_nothing_is_created(
    fhir: httpx.Client, strict_fhir_server: StrictFhirServer
) -> None:
    tag = str(uuid.uuid4())

    response = fhir.post("", json=_conditional_creates(9, tag))

    assert response.status_code == 400
    issue = _outcome(response)["issue"][0]
    assert issue["code"] == "too-costly"
    assert issue["diagnostics"] == (
        "Transaction has 9 entries; this server accepts at most 8 when conditional entries are "
        "present"
    )
    assert "transaction of 9 entries over the limit of 8" in strict_fhir_server.refused
    assert _count(fhir, f"identifier={SYSTEM}|{tag}-0") == 0


def test_eight_conditional_entries_go_through(fhir: httpx.Client) -> None:
    tag = str(uuid.uuid4())

    response = fhir.post("", json=_conditional_creates(8, tag))

    assert response.status_code == 200, response.text
    assert [e["response"]["status"][:3] for e in response.json()["entry"]] == ["201"] * 8


def test_more_entries_without_conditions_are_not_limited(fhir: httpx.Client) -> None:
    response = fhir.post("", json=_updates(12))

    assert response.status_code == 200, response.text


def test_fifty_one_updates_are_refused_as_too_costly(
    fhir: httpx.Client, strict_fhir_server: StrictFhirServer
) -> None:
    bundle = _updates(51)

    response = fhir.post("", json=bundle)

    assert response.status_code == 400
    assert _outcome(response)["issue"][0]["code"] == "too-costly"
    assert "transaction of 51 updates over the limit of 50" in strict_fhir_server.refused
    first_id = bundle["entry"][0]["resource"]["id"]
    assert fhir.get(f"Patient/{first_id}").status_code == 404


def test_fifty_updates_go_through(fhir: httpx.Client) -> None:
    response = fhir.post("", json=_updates(50))

    assert response.status_code == 200, response.text


def test_size_limits_can_be_lifted(
    strict_fhir_server: StrictFhirServer, strict_server_factory: StrictServerFactory
) -> None:
    unlimited = strict_server_factory(
        Quirks(max_transaction_entries=None), upstream=strict_fhir_server.upstream
    )

    response = httpx.post(
        unlimited.base_url, json=_conditional_creates(9, str(uuid.uuid4())), headers=FHIR_JSON
    )

    assert response.status_code == 200, response.text


# ---------------------------------------------------------------- referential integrity


def test_a_goal_referencing_a_missing_patient_is_refused_naming_the_reference(
    fhir: httpx.Client, strict_fhir_server: StrictFhirServer
) -> None:
    missing = f"strict-{uuid.uuid4()}"

    response = fhir.post("Goal", json=_goal(f"Patient/{missing}"))

    assert response.status_code == 400
    issue = _outcome(response)["issue"][0]
    assert issue["diagnostics"] == (
        f"Resource Patient/{missing} not found, specified in path: Goal.subject"
    )
    assert issue["expression"] == ["Goal.subject"]
    assert any(f"Patient/{missing}" in line for line in strict_fhir_server.refused)


def test_a_goal_is_accepted_once_its_patient_exists(fhir: httpx.Client) -> None:
    pid = f"strict-{uuid.uuid4()}"
    assert fhir.post("Goal", json=_goal(f"Patient/{pid}")).status_code == 400

    fhir.put(f"Patient/{pid}", json={**_patient(), "id": pid})
    response = fhir.post("Goal", json=_goal(f"Patient/{pid}"))

    assert response.status_code == 201, response.text


def test_absolute_references_to_the_proxy_are_checked(
    fhir: httpx.Client, strict_fhir_server: StrictFhirServer
) -> None:
    missing = f"{strict_fhir_server.base_url}/Patient/strict-{uuid.uuid4()}"

    response = fhir.post("Goal", json=_goal(missing))

    assert response.status_code == 400


def test_contained_and_foreign_references_are_not_checked(fhir: httpx.Client) -> None:
    goal = _goal("#p1")
    goal["contained"] = [{**_patient(), "id": "p1"}]
    goal["expressedBy"] = {"reference": "https://ehr.example.org/fhir/Practitioner/123"}
    goal["addresses"] = [{"identifier": {"system": SYSTEM, "value": "condition-1"}}]

    response = fhir.post("Goal", json=goal)

    assert response.status_code == 201, response.text


def test_a_transaction_with_a_dangling_reference_is_refused_whole_naming_the_entry(
    fhir: httpx.Client,
) -> None:
    tag = str(uuid.uuid4())
    missing = f"strict-{uuid.uuid4()}"
    bundle = _conditional_creates(1, tag)
    goal_url = f"urn:uuid:{uuid.uuid4()}"
    bundle["entry"].append(
        {
            "fullUrl": goal_url,
            "resource": _goal(f"Patient/{missing}"),
            "request": {"method": "POST", "url": "Goal"},
        }
    )

    response = fhir.post("", json=bundle)

    assert response.status_code == 400
    diagnostics = _outcome(response)["issue"][0]["diagnostics"]
    assert f"Goal {goal_url}" in diagnostics
    assert f"Resource Patient/{missing} not found, specified in path: Goal.subject" in diagnostics
    assert _count(fhir, f"identifier={SYSTEM}|{tag}-0") == 0


def test_references_between_entries_of_one_transaction_are_fine(fhir: httpx.Client) -> None:
    pid = f"strict-{uuid.uuid4()}"
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_url,
                "resource": _patient(),
                "request": {"method": "POST", "url": "Patient"},
            },
            {"resource": _goal(patient_url), "request": {"method": "POST", "url": "Goal"}},
            {
                "resource": {**_patient(), "id": pid},
                "request": {"method": "PUT", "url": f"Patient/{pid}"},
            },
            {"resource": _goal(f"Patient/{pid}"), "request": {"method": "POST", "url": "Goal"}},
        ],
    }

    response = fhir.post("", json=bundle)

    assert response.status_code == 200, response.text


def test_in_a_batch_only_the_entry_with_a_dangling_reference_fails(fhir: httpx.Client) -> None:
    patient = _create(fhir, _patient()).json()
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": _goal(f"Patient/strict-{uuid.uuid4()}"),
                "request": {"method": "POST", "url": "Goal"},
            },
            {
                "resource": _goal(f"Patient/{patient['id']}"),
                "request": {"method": "POST", "url": "Goal"},
            },
        ],
    }

    response = fhir.post("", json=bundle)

    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == ["400 Bad Request", "201 Created"]


# ---------------------------------------------------------------- capability, status, search


def test_capability_statement_advertises_versioned_although_if_match_works(
    fhir: httpx.Client,
) -> None:
    statement = fhir.get("metadata").json()

    versioning = {r["versioning"] for r in statement["rest"][0]["resource"]}
    assert versioning == {"versioned"}


def test_create_by_put_answers_200(fhir: httpx.Client) -> None:
    pid = f"strict-{uuid.uuid4()}"

    response = fhir.put(f"Patient/{pid}", json={**_patient(), "id": pid})

    assert response.status_code == 200
    assert _is_uuid(response.json()["meta"]["versionId"])


def test_create_by_put_in_a_transaction_answers_200(fhir: httpx.Client) -> None:
    response = fhir.post("", json=_updates(2))

    assert [e["response"]["status"] for e in response.json()["entry"]] == ["200 OK", "200 OK"]


def test_searchset_has_no_total_and_its_next_link_leads_through_the_proxy(
    fhir: httpx.Client, strict_fhir_server: StrictFhirServer
) -> None:
    tag = str(uuid.uuid4())
    fhir.post("", json=_conditional_creates(3, tag))

    first = fhir.get(
        "Patient",
        params={"identifier": f"{SYSTEM}|{tag}-0,{SYSTEM}|{tag}-1,{SYSTEM}|{tag}-2", "_count": 2},
    ).json()

    assert "total" not in first
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert links["next"].startswith(f"{strict_fhir_server.base_url}/Patient?")
    second = fhir.get(links["next"]).json()
    assert len(first["entry"]) + len(second["entry"]) == 3


def test_quirks_can_be_turned_off(
    strict_fhir_server: StrictFhirServer, strict_server_factory: StrictServerFactory
) -> None:
    lenient = strict_server_factory(
        Quirks(opaque_versions=False, search_total=True, put_create_status=201),
        upstream=strict_fhir_server.upstream,
    )
    with httpx.Client(base_url=lenient.base_url, headers=FHIR_JSON) as client:
        pid = f"strict-{uuid.uuid4()}"
        created = client.put(f"Patient/{pid}", json={**_patient(), "id": pid})
        search = client.get("Patient", params={"_id": pid}).json()

    assert created.status_code == 201
    assert created.json()["meta"]["versionId"] == "1"
    assert search["total"] == 1


# ---------------------------------------------------------------- robustness and program


def test_concurrent_transactions_all_succeed_with_distinct_versions(
    strict_fhir_server: StrictFhirServer,
) -> None:
    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(headers=FHIR_JSON, timeout=60) as client:
            return list(
                await asyncio.gather(
                    *(client.post(strict_fhir_server.base_url, json=_updates(5)) for _ in range(6))
                )
            )

    responses = asyncio.run(run())

    assert [r.status_code for r in responses] == [200] * 6
    etags = [e["response"]["etag"] for r in responses for e in r.json()["entry"]]
    assert len(set(etags)) == 30


def test_a_dead_upstream_is_a_502_with_an_operation_outcome(
    strict_server_factory: StrictServerFactory,
) -> None:
    server = strict_server_factory()
    server.upstream.kill()

    response = httpx.get(f"{server.base_url}/metadata", headers=FHIR_JSON)

    assert response.status_code == 502
    assert _outcome(response)["issue"][0]["code"] == "transient"


def test_runs_as_a_program_until_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.servers.strict",
            "--port",
            "0",
            "--workdir",
            str(tmp_path),
            "--max-entries",
            "4",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "the strict server printed no base URL within 60 s"
        base_url = process.stdout.readline().strip()
        statement = httpx.get(f"{base_url}/metadata", headers=FHIR_JSON).json()
        refused = httpx.post(base_url, json=_conditional_creates(5, "p"), headers=FHIR_JSON)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)

    assert base_url.startswith("http://127.0.0.1:")
    assert statement["resourceType"] == "CapabilityStatement"
    assert refused.status_code == 400
    assert code == 0
    upstream_port = yaml.safe_load((tmp_path / "settings.yaml").read_text())["port"]
    for url in (base_url, f"http://127.0.0.1:{upstream_port}/fhir"):
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/metadata", timeout=2)
