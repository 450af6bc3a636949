"""Referrals: send one (to a specialist, or for a social need) and follow its fulfilment Task
until it closes. Sending goes through ``POST /referrals``; the page shows the tracker as the
performer moves it on the FHIR server (pulled by ``sync``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from fhirbridge.api.access import CLINICAL, require_role, visible_patient, visible_record
from fhirbridge.api.problems import Problem
from fhirbridge.api.routes import referrals as referral_routes
from fhirbridge.api.schemas.referrals import ReferralCreate
from fhirbridge.domain import ReferralKind, TaskPriority
from fhirbridge.persistence import Store
from fhirbridge.services import referral as referral_service
from fhirbridge.services.errors import WorkflowError
from fhirbridge.services.referral import SDOH_CATEGORIES, SERVICE_SYSTEMS
from fhirbridge.web.pages import PageRoute, Refusal, page, page_work, refusal
from fhirbridge.web.session import CSRF_FIELD, CheckedSession, SignedIn

__all__ = ["router"]

router = APIRouter(prefix="/app", route_class=PageRoute, include_in_schema=False)

_DEFAULTS = {
    "kind": ReferralKind.SOCIAL_NEED.value,
    "service_system": "snomed",
    "priority": "routine",
}


def _new_referral_page(
    request: Request,
    session: SignedIn,
    patient_id: str,
    values: Mapping[str, Any],
    refused: Refusal | None,
) -> Response:
    def build(store: Store) -> Mapping[str, Any]:
        patient = visible_patient(store, session.principal, patient_id)
        return {
            "patient": patient,
            "consents": store.consents.list_for_patient(patient.id),
            "goals": store.goals.list_for_patient(patient.id),
        }

    return page(
        request,
        session,
        "referral_new.html",
        build,
        status_code=refused.status if refused else 200,
        extra={
            "values": values,
            "errors": refused.errors if refused else {},
            "refusal": refused,
            "kinds": [k.value for k in ReferralKind],
            "categories": SDOH_CATEGORIES,
            "systems": sorted(SERVICE_SYSTEMS),
            "priorities": [p.value for p in TaskPriority],
        },
    )


@router.get("/patients/{patient_id}/referrals/new")
def new_referral_page(patient_id: str, request: Request, session: SignedIn) -> Response:
    require_role(session.principal, CLINICAL)
    return _new_referral_page(request, session, patient_id, _DEFAULTS, None)


@router.post("/patients/{patient_id}/referrals")
async def send_referral(patient_id: str, request: Request, session: CheckedSession) -> Response:
    form = await request.form()
    sent: dict[str, Any] = {
        k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD and v
    }
    sent["categories"] = [c for c in form.getlist("categories") if isinstance(c, str) and c]
    service: dict[str, Any] = {
        "system": sent.get("service_system"),
        "code": sent.get("service_code"),
    }
    if "service_display" in sent:
        service["display"] = sent["service_display"]
    body_fields: dict[str, Any] = {
        "patient_id": patient_id,
        "kind": sent.get("kind"),
        "service": service,
        "categories": sent["categories"],
        **{
            name: sent[name]
            for name in (
                "reason",
                "priority",
                "performer_reference",
                "performer_display",
                "consent_id",
                "goal_id",
            )
            if name in sent
        },
    }
    work = page_work(request, session)
    try:
        answer = referral_routes.create_referral(
            ReferralCreate.model_validate(body_fields), session.principal, work
        )
    except (ValidationError, WorkflowError, Problem) as error:
        refused = refusal(error)
        if refused is None:
            raise
        return _new_referral_page(request, session, patient_id, sent, refused)
    created = json.loads(bytes(answer.body))
    return RedirectResponse(f"/app/referrals/{created['id']}", status_code=303)


@router.get("/referrals/{referral_id}")
def referral_page(referral_id: str, request: Request, session: SignedIn) -> Response:
    """One referral and its tracker's timeline; it refreshes itself until the loop closes."""
    require_role(session.principal, CLINICAL)

    def build(store: Store) -> Mapping[str, Any]:
        referral = visible_record(
            store, session.principal, "referral", referral_id, store.referrals.get
        )
        return {
            "r": referral,
            "timelines": {
                referral.id: referral_service.timeline(store=store, referral_id=referral.id)
            },
        }

    return page(request, session, "referral.html", build)
