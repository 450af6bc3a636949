"""The rest-hook endpoint for topic-based Subscriptions (R5 Backport IG on FHIR R4).

The FHIR server is not one of our API's users: it has no bearer token or API key. It proves
itself with a shared secret that the Subscription tells it to send in a header
(``Subscription.channel.header``); the header name and secret are settings. The secret is
checked before the body is read, and compared in constant time.

Handshakes and heartbeats are acknowledged and change nothing. An event notification goes
through ``apply_notification``: each focus is applied with the pull's rules (id-only payloads
are read from the server first, with the app's FHIR client). A focus on another server is never
followed. When the FHIR server cannot be read, the answer is 502, so the sender retries; a
missed notification is caught by the next pull anyway.

Whatever the body holds, the answer is a 4xx problem, never a 500: not JSON, nested too deeply
or holding control characters (400), larger than ``api.boundary.MAX_BODY_BYTES`` (413).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from fhirbridge import wiring
from fhirbridge.api.deps import State
from fhirbridge.api.problems import PROBLEM_JSON, Problem
from fhirbridge.api.schemas.notifications import NotificationReceipt
from fhirbridge.api.schemas.problems import ProblemRead
from fhirbridge.config import Settings
from fhirbridge.fhir import FhirClient, FhirError
from fhirbridge.services.errors import FieldError
from fhirbridge.sync.notifications import (
    MAX_DEPTH,
    MalformedNotification,
    NotificationType,
    apply_notification,
    parse_notification,
)

__all__ = ["notification_client", "router"]

router = APIRouter(prefix="/fhir", tags=["subscriptions"])
log = logging.getLogger("fhirbridge.api.notifications")

_JSON_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})
# The sender retries a failed notification itself; a long retry here only holds its request open.
_MAX_FHIR_RETRIES = 1


@asynccontextmanager
async def notification_client(
    settings: Settings, *, given: FhirClient | None = None
) -> AsyncIterator[FhirClient]:
    """The FHIR client the webhook reads changed resources with: ``given`` (left open, its
    owner closes it), or one bound to ``settings.fhir_base_url`` with the configured auth."""
    if given is not None:
        yield given
        return
    retries = min(settings.fhir_max_retries, _MAX_FHIR_RETRIES)
    async with wiring.fhir_client(settings, max_retries=retries) as client:
        yield client


def _fhir_client(request: Request) -> FhirClient:
    client: FhirClient | None = getattr(request.app.state, "fhir_client", None)
    if client is None:
        # Only when the app runs without its lifespan (no startup, no client).
        raise Problem(503, "not-ready", "Not ready", "the FHIR client is not started")
    return client


def _problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    meaning = {
        400: "Not a subscription notification Bundle; errors name the offending part",
        401: "Missing or wrong notification secret",
        415: "Not FHIR JSON",
        502: "The FHIR server could not be read; send the notification again",
    }
    return {
        status: {
            "model": ProblemRead,
            "description": meaning[status],
            "content": {PROBLEM_JSON: {}},
        }
        for status in statuses
    }


@router.post(
    "/notifications",
    response_model=NotificationReceipt,
    responses=_problem_responses(400, 401, 415, 502),
    summary="Receive a subscription notification (rest-hook)",
)
async def receive_notification(
    request: Request,
    state: State,
    client: Annotated[FhirClient, Depends(_fhir_client)],
) -> NotificationReceipt:
    """A ``history`` Bundle from the FHIR server; the shared secret header is required."""
    _verify_secret(request, state.settings)
    _check_media_type(request.headers.get("content-type"))
    bundle = _json(await request.body())
    try:
        notification = parse_notification(bundle)
    except MalformedNotification as error:
        raise _malformed(str(error), FieldError(error.where, error.reason)) from error
    if notification.type is not NotificationType.EVENT_NOTIFICATION:
        return NotificationReceipt.of(notification)
    try:
        report = await apply_notification(
            bundle,
            client=client,
            sessions=state.sessions,
            mappings=state.mappings,
            identifier_system=state.settings.identifier_system,
            now=state.clock,
            hooks=wiring.pull_hooks(state.settings, state.clock),
        )
    except FhirError as error:
        # The request line names a resource id at most; no content, no credentials.
        log.warning("notification not applied: %s on %s", type(error).__name__, error.request)
        raise Problem(
            502,
            "fhir-server-unavailable",
            "FHIR server could not be read",
            f"reading a changed resource failed ({type(error).__name__}); nothing was applied",
        ) from error
    return NotificationReceipt.of(notification, report)


def _verify_secret(request: Request, settings: Settings) -> None:
    header = settings.notification_secret_header
    sent = request.headers.get(header)
    if sent is None:
        raise _unauthenticated(f"no {header} header")
    expected = settings.notification_secret
    if expected is None:
        log.warning("subscription notification refused: no notification secret is configured")
        raise _unauthenticated("wrong notification secret")
    if not hmac.compare_digest(sent.encode(), expected.get_secret_value().encode()):
        raise _unauthenticated("wrong notification secret")


def _unauthenticated(detail: str) -> Problem:
    return Problem(401, "unauthenticated", "Authentication required", detail)


def _check_media_type(content_type: str | None) -> None:
    if content_type is None:
        return  # lenient: the body still has to be a notification Bundle
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in _JSON_TYPES:
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "expected application/fhir+json",
        )


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as error:
        raise _malformed("the body is not JSON", FieldError("body", "not JSON")) from error
    except RecursionError as error:
        # Nesting deep enough to exhaust the parser's stack is no notification either.
        raise _malformed(
            f"the body is nested deeper than {MAX_DEPTH} levels",
            FieldError("body", "nested too deeply"),
        ) from error


def _malformed(detail: str, error: FieldError) -> Problem:
    return Problem(400, "malformed-notification", "Malformed notification", detail, errors=[error])
