"""The Bulk Data client against a faked transport: the failure modes a real server rarely shows
on demand (rate limits while polling, expiry, truncated files, interrupts)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import respx
from pydantic import SecretStr

from fhirbridge.bulk import (
    STATE_FILE,
    BulkClient,
    DownloadIncomplete,
    ExportExpired,
    ExportLevel,
    ExportRequest,
    PollPolicy,
    PollStatus,
)
from fhirbridge.fhir import BearerAuthSettings, FhirClient, build_auth

pytestmark = pytest.mark.anyio

BASE = "http://127.0.0.1:9/fhir"
STATUS = f"{BASE}/bulk-status/job1"
FILES = f"{BASE}/bulk-files/job1"


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def fhir() -> AsyncIterator[FhirClient]:
    async with FhirClient(BASE, max_retries=0) as client:
        yield client


@pytest.fixture
def server() -> respx.MockRouter:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.get(f"{BASE}/$export").respond(202, headers={"Content-Location": STATUS})
        yield router


def manifest(bulk_fixtures: Path, name: str = "manifest.json") -> httpx.Response:
    return httpx.Response(200, json=json.loads((bulk_fixtures / name).read_text()))


def ndjson(bulk_fixtures: Path, name: str) -> httpx.Response:
    return httpx.Response(200, content=(bulk_fixtures / name).read_bytes())


def serve_files(server: respx.MockRouter, bulk_fixtures: Path) -> None:
    server.get(f"{FILES}/Goal.ndjson").mock(return_value=ndjson(bulk_fixtures, "Goal.ndjson"))
    server.get(f"{FILES}/CarePlan.ndjson").mock(
        return_value=ndjson(bulk_fixtures, "CarePlan.ndjson")
    )


async def test_polling_waits_as_long_as_a_429_and_each_202_ask(
    fhir: FhirClient, server: respx.MockRouter, sleeps: Sleeps, bulk_fixtures: Path, tmp_path: Path
) -> None:
    server.get(STATUS).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(202, headers={"Retry-After": "3", "X-Progress": "writing"}),
            manifest(bulk_fixtures),
        ]
    )
    serve_files(server, bulk_fixtures)
    events: list[object] = []

    await BulkClient(fhir, sleep=sleeps).export(
        ExportRequest(), tmp_path, on_progress=events.append
    )

    assert sleeps.waits == [7.0, 3.0]
    polls = [e for e in events if isinstance(e, PollStatus)]
    assert [(p.rate_limited, p.progress) for p in polls] == [(True, None), (False, "writing")]


async def test_a_retry_after_beyond_the_bound_is_shortened_to_it(
    fhir: FhirClient, server: respx.MockRouter, sleeps: Sleeps, bulk_fixtures: Path
) -> None:
    server.get(STATUS).mock(
        side_effect=[httpx.Response(202, headers={"Retry-After": "86400"}), manifest(bulk_fixtures)]
    )
    client = BulkClient(fhir, sleep=sleeps, policy=PollPolicy(max_interval=60))

    await client.poll(STATUS)

    assert sleeps.waits == [60.0]


async def test_a_retry_after_given_as_an_http_date_is_measured_from_the_server_date(
    fhir: FhirClient, server: respx.MockRouter, sleeps: Sleeps, bulk_fixtures: Path
) -> None:
    headers = {
        "Date": "Sat, 31 Oct 2026 12:00:00 GMT",
        "Retry-After": "Sat, 31 Oct 2026 12:00:42 GMT",
    }
    server.get(STATUS).mock(
        side_effect=[httpx.Response(202, headers=headers), manifest(bulk_fixtures)]
    )

    await BulkClient(fhir, sleep=sleeps).poll(STATUS)

    assert sleeps.waits == [42.0]


@pytest.mark.parametrize("status", [404, 410])
async def test_an_expired_status_url_is_a_clear_error(
    fhir: FhirClient, server: respx.MockRouter, sleeps: Sleeps, status: int
) -> None:
    server.get(STATUS).respond(status)

    with pytest.raises(ExportExpired, match="expired or was cancelled") as caught:
        await BulkClient(fhir, sleep=sleeps).poll(STATUS)

    assert caught.value.status == status


async def test_a_truncated_file_is_fetched_again_until_its_lines_match_the_manifest(
    fhir: FhirClient, server: respx.MockRouter, sleeps: Sleeps, bulk_fixtures: Path, tmp_path: Path
) -> None:
    full = (bulk_fixtures / "Goal.ndjson").read_bytes()
    truncated = b"".join(full.splitlines(keepends=True)[:2])
    server.get(STATUS).mock(return_value=manifest(bulk_fixtures))
    goal = server.get(f"{FILES}/Goal.ndjson").mock(
        side_effect=[httpx.Response(200, content=truncated), httpx.Response(200, content=full)]
    )
    server.get(f"{FILES}/CarePlan.ndjson").mock(
        return_value=ndjson(bulk_fixtures, "CarePlan.ndjson")
    )

    result = await BulkClient(fhir, sleep=sleeps).export(ExportRequest(), tmp_path)

    assert goal.call_count == 2
    assert (tmp_path / "Goal.ndjson").read_bytes() == full
    assert [f.lines for f in result.files] == [3, 1]


async def test_a_file_that_stays_short_is_an_error_naming_both_counts(
    fhir: FhirClient, server: respx.MockRouter, sleeps: Sleeps, bulk_fixtures: Path, tmp_path: Path
) -> None:
    server.get(STATUS).mock(return_value=manifest(bulk_fixtures))
    server.get(f"{FILES}/Goal.ndjson").respond(200, content=b'{"resourceType":"Goal"}\n')

    with pytest.raises(DownloadIncomplete) as caught:
        await BulkClient(fhir, sleep=sleeps, download_attempts=2).export(ExportRequest(), tmp_path)

    assert (caught.value.expected, caught.value.received) == (3, 1)
    assert not (tmp_path / "Goal.ndjson").exists()


async def test_error_entries_of_the_manifest_are_downloaded_and_their_issues_reported(
    fhir: FhirClient, server: respx.MockRouter, sleeps: Sleeps, bulk_fixtures: Path, tmp_path: Path
) -> None:
    server.get(STATUS).mock(return_value=manifest(bulk_fixtures, "manifest_with_error.json"))
    server.get(f"{FILES}/Goal.ndjson").mock(return_value=ndjson(bulk_fixtures, "Goal.ndjson"))
    server.get(f"{FILES}/errors.ndjson").mock(return_value=ndjson(bulk_fixtures, "errors.ndjson"))

    result = await BulkClient(fhir, sleep=sleeps).export(ExportRequest(), tmp_path)

    assert [f.type for f in result.files] == ["Goal"]
    assert [f.name for f in result.error_files] == ["error.OperationOutcome.ndjson"]
    assert [(i.severity, i.code) for i in result.issues] == [("warning", "not-supported")]


async def test_a_rerun_downloads_only_the_files_not_yet_complete(
    fhir: FhirClient, server: respx.MockRouter, sleeps: Sleeps, bulk_fixtures: Path, tmp_path: Path
) -> None:
    status = server.get(STATUS).mock(return_value=manifest(bulk_fixtures))
    serve_files(server, bulk_fixtures)
    client = BulkClient(fhir, sleep=sleeps)
    await client.export(ExportRequest(), tmp_path)
    (tmp_path / "CarePlan.ndjson").write_bytes(b'{"resourceType":')  # cut short since
    kickoffs, polls = server.calls.call_count, status.call_count

    result = await client.export(ExportRequest(), tmp_path)

    assert (result.reused, result.downloaded) == (1, 1)
    assert status.call_count == polls  # the manifest was kept: no polling, no new kick-off
    fetched = [c.request.url.path for c in server.calls][kickoffs:]
    assert fetched == ["/fhir/bulk-files/job1/CarePlan.ndjson"]


async def test_a_rerun_after_an_interrupted_poll_polls_the_same_status_url(
    fhir: FhirClient, server: respx.MockRouter, bulk_fixtures: Path, tmp_path: Path
) -> None:
    server.get(STATUS).mock(
        side_effect=[httpx.Response(202, headers={"Retry-After": "1"}), manifest(bulk_fixtures)]
    )
    serve_files(server, bulk_fixtures)

    async def crash(_: float) -> None:
        raise ConnectionAbortedError("process died")

    with pytest.raises(ConnectionAbortedError):
        await BulkClient(fhir, sleep=crash).export(ExportRequest(), tmp_path)
    await BulkClient(fhir, sleep=Sleeps()).export(ExportRequest(), tmp_path)

    kickoff = server.routes[0]
    assert kickoff.call_count == 1


async def test_ctrl_c_while_polling_cancels_the_export_on_the_server(
    fhir: FhirClient, server: respx.MockRouter, tmp_path: Path
) -> None:
    server.get(STATUS).respond(202, headers={"Retry-After": "5"})
    delete = server.delete(STATUS).respond(202)

    async def interrupted(_: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await BulkClient(fhir, sleep=interrupted).export(ExportRequest(), tmp_path)

    assert delete.call_count == 1
    assert not (tmp_path / STATE_FILE).exists()


async def test_ctrl_c_keeps_the_export_when_asked_to_so_a_rerun_resumes(
    fhir: FhirClient, server: respx.MockRouter, tmp_path: Path
) -> None:
    server.get(STATUS).respond(202, headers={"Retry-After": "5"})
    delete = server.delete(STATUS).respond(202)

    async def interrupted(_: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await BulkClient(fhir, sleep=interrupted).export(
            ExportRequest(), tmp_path, cancel_on_interrupt=False
        )

    assert delete.call_count == 0
    assert json.loads((tmp_path / STATE_FILE).read_text())["status_url"] == STATUS


async def test_the_kick_off_asks_for_an_async_answer_with_the_export_parameters(
    fhir: FhirClient, server: respx.MockRouter, sleeps: Sleeps
) -> None:
    kickoff = server.get(f"{BASE}/Group/plan-members/$export").respond(
        202, headers={"Content-Location": STATUS}
    )
    request = ExportRequest(
        level=ExportLevel.GROUP,
        group_id="plan-members",
        types=("CarePlan", "Task"),
        since="2026-10-01T00:00:00Z",
        type_filters=("Task?status=ready",),
    )

    assert await BulkClient(fhir, sleep=sleeps).kick_off(request) == STATUS

    sent = kickoff.calls.last.request
    assert sent.headers["Prefer"] == "respond-async"
    assert sent.headers["Accept"] == "application/fhir+json"
    assert sent.url.params.multi_items() == [
        ("_type", "CarePlan,Task"),
        ("_since", "2026-10-01T00:00:00Z"),
        ("_typeFilter", "Task?status=ready"),
    ]


async def test_the_token_goes_only_to_files_on_the_servers_own_origin(
    server: respx.MockRouter, sleeps: Sleeps, tmp_path: Path
) -> None:
    elsewhere = "http://127.0.0.2:9/files/CarePlan.ndjson"
    body = {
        "transactionTime": "2026-10-31T12:00:00Z",
        "request": f"{BASE}/$export",
        "requiresAccessToken": True,
        "output": [
            {"type": "Goal", "url": f"{FILES}/Goal.ndjson"},
            {"type": "CarePlan", "url": elsewhere},
        ],
    }
    server.get(STATUS).respond(200, json=body)
    own = server.get(f"{FILES}/Goal.ndjson").respond(200, content=b"{}\n")
    other = server.get(elsewhere).respond(200, content=b"{}\n")
    auth = build_auth(BearerAuthSettings(token=SecretStr("s3cret")), base_url=BASE)

    async with FhirClient(BASE, auth=auth, max_retries=0) as fhir:
        await BulkClient(fhir, sleep=sleeps).export(ExportRequest(), tmp_path)

    assert own.calls.last.request.headers["Authorization"] == "Bearer s3cret"
    assert "Authorization" not in other.calls.last.request.headers
