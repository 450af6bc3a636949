"""Pulling referral Task moves from a server that keeps no history (the real server, with its
instance ``_history`` refused or unlisted in front of it): a jump the Gravity machine forbids
only because steps are missing is accepted when the performer could have walked it through
accepted and in progress; anything else is still refused."""

from __future__ import annotations

import json

import httpx
import pytest

from fhirbridge.domain import TaskStatus
from fhirbridge.persistence import EntityKind
from fhirbridge.sync.pull import InboundOutcome, PullReport
from tests.sync.conftest import SyncWorld, fulfil, performer_updates

pytestmark = pytest.mark.integration

REFERRAL = EntityKind.REFERRAL
FOOD = performer_updates()["referral"]


class WithoutHistory(httpx.AsyncBaseTransport):
    """The server as it is, except that instance history is refused (405) or, with
    ``unlisted``, left out of the CapabilityStatement; counts the history requests."""

    def __init__(self, *, unlisted: bool = False) -> None:
        self._network = httpx.AsyncHTTPTransport()
        self._unlisted = unlisted
        self.history_requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/_history"):
            self.history_requests += 1
            if not self._unlisted:
                return httpx.Response(405, json={"resourceType": "OperationOutcome", "issue": []})
        response = await self._network.handle_async_request(request)
        if self._unlisted and request.url.path.endswith("/metadata"):
            return _without_history_instance(response, await response.aread())
        return response

    async def aclose(self) -> None:
        await self._network.aclose()


def _without_history_instance(response: httpx.Response, body: bytes) -> httpx.Response:
    statement = json.loads(body)
    for rest in statement.get("rest") or []:
        for resource in rest.get("resource") or []:
            resource["interaction"] = [
                i for i in resource.get("interaction") or [] if i["code"] != "history-instance"
            ]
    return httpx.Response(response.status_code, json=statement)


def _outcome(report: PullReport) -> InboundOutcome:
    (result,) = [r for r in report.results if r.target and r.target.local_id == FOOD]
    return result.outcome


def test_fulfilment_between_two_pulls_is_applied(sync_world: SyncWorld) -> None:
    fulfil(sync_world, performer_updates()["fulfilment"])

    report = sync_world.pull("Task", transport=WithoutHistory())

    assert _outcome(report) is InboundOutcome.APPLIED
    assert sync_world.record(REFERRAL, FOOD).task_status is TaskStatus.COMPLETED


def test_a_jump_the_performer_could_have_walked_is_accepted(sync_world: SyncWorld) -> None:
    fulfil(sync_world, [performer_updates()["jump_to_completed"]])

    report = sync_world.pull("Task", transport=WithoutHistory())

    assert _outcome(report) is InboundOutcome.APPLIED


def test_reopening_a_completed_task_is_still_refused(sync_world: SyncWorld) -> None:
    updates = performer_updates()
    fulfil(sync_world, updates["fulfilment"])
    sync_world.pull("Task", transport=WithoutHistory())
    fulfil(sync_world, [updates["reopen"]])

    report = sync_world.pull("Task", transport=WithoutHistory())

    assert _outcome(report) is InboundOutcome.INVALID_TRANSITION
    assert sync_world.record(REFERRAL, FOOD).task_status is TaskStatus.COMPLETED


def test_a_rejection_without_a_reason_is_still_refused(sync_world: SyncWorld) -> None:
    fulfil(sync_world, [{"status": "rejected"}])  # Gravity asks for statusReason with it

    report = sync_world.pull("Task", transport=WithoutHistory())

    assert _outcome(report) is InboundOutcome.INVALID_TRANSITION


def test_a_server_that_does_not_list_history_is_not_asked_for_it(sync_world: SyncWorld) -> None:
    fulfil(sync_world, performer_updates()["fulfilment"])
    transport = WithoutHistory(unlisted=True)

    report = sync_world.pull("Task", transport=transport)

    assert transport.history_requests == 0
    assert _outcome(report) is InboundOutcome.APPLIED
