"""Assessments and screening: record a response (with its follow-ups), read one, read a
patient's score history (BHI/CoCM response and remission)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse

from fhirbridge.api.access import CLINICAL, require_role, visible_patient, visible_record
from fhirbridge.api.deps import Caller, Work
from fhirbridge.api.schemas._base import Code
from fhirbridge.api.schemas.assessments import (
    AssessmentCreate,
    AssessmentHistoryRead,
    AssessmentRead,
    AssessmentRecorded,
    FollowUpsRead,
    HistoryPointRead,
)
from fhirbridge.api.schemas.problems import problems
from fhirbridge.domain import AssessmentResponse
from fhirbridge.mapping.instruments import Instruments
from fhirbridge.persistence import Store
from fhirbridge.services import assessment as service
from fhirbridge.services.errors import FieldError, Rejected

router = APIRouter(tags=["assessments"])


def _instrument_id(instruments: Instruments, response: AssessmentResponse) -> str:
    """The installed instrument's id, else the canonical answered (an instrument removed)."""
    found = instruments.by_questionnaire(response.questionnaire)
    return response.questionnaire if found is None else found.id


CREATED = status.HTTP_201_CREATED


@router.post(
    "/patients/{patient_id}/assessments",
    status_code=CREATED,
    response_model=AssessmentRecorded,
    responses=problems(403, 404, 422),
)
def record_assessment(
    patient_id: str, body: AssessmentCreate, caller: Caller, work: Work
) -> JSONResponse:
    """Score the answers and store them with what the instrument's rules ask for: an urgent
    task for PHQ-9 item 9 above 0, a PHQ-9 proposed after a positive PHQ-2, and for a positive
    social-needs domain a health concern, a proposed goal and a proposed (draft) referral.
    An unknown item, an answer the item does not offer or a required item left out is a 422
    naming ``answers.<linkId>``."""
    require_role(caller, CLINICAL)
    now = work.now()

    def run(store: Store) -> AssessmentRecorded:
        visible_patient(store, caller, patient_id)
        authored = body.authored or now
        if authored > now:
            raise Rejected("assessment", [FieldError("authored", "in the future")])
        recorded = service.record_assessment(
            store=store,
            instruments=work.mappings.instruments,
            new=service.NewAssessment(
                patient_id=patient_id,
                instrument=body.instrument,
                answers=dict(body.answers),
                authored=authored,
                author_id=body.author_id or caller.staff_id,
            ),
            tz=work.tz,
        )
        read = AssessmentRead.of(recorded.assessment, body.instrument)
        return AssessmentRecorded(
            **read.model_dump(),
            follow_ups=FollowUpsRead(
                rules=recorded.follow_ups,
                observation_ids=[o.id for o in recorded.observations],
                concern_ids=[c.id for c in recorded.concerns],
                goal_ids=[g.id for g in recorded.goals],
                referral_ids=[r.id for r in recorded.referrals],
                task_ids=[t.id for t in recorded.tasks],
                proposed_instruments=recorded.proposed_instruments,
            ),
        )

    return work.write(run, status_code=CREATED)


@router.get("/patients/{patient_id}/assessments", responses=problems(403, 404, 422))
def assessment_history(
    patient_id: str,
    caller: Caller,
    work: Work,
    instrument: Annotated[Code | None, Query(description="e.g. phq-9; all when left out")] = None,
) -> AssessmentHistoryRead:
    """The patient's responses oldest first, with totals, bands and, for instruments with
    measurement-based care (PHQ-9, GAD-7), the change from the baseline (the first response),
    response (a drop of 50 % or more) and remission (a total under 5)."""
    require_role(caller, CLINICAL)

    def run(store: Store) -> AssessmentHistoryRead:
        visible_patient(store, caller, patient_id)
        history = service.assessment_history(
            store=store,
            instruments=work.mappings.instruments,
            patient_id=patient_id,
            instrument=instrument,
        )
        instruments = work.mappings.instruments
        return AssessmentHistoryRead(
            patient_id=patient_id,
            instrument=instrument,
            points=[
                HistoryPointRead.of(response, point, _instrument_id(instruments, response))
                for response, point in history
            ],
        )

    return work.read(run)


@router.get("/assessments/{assessment_id}", responses=problems(403, 404))
def get_assessment(assessment_id: str, caller: Caller, work: Work) -> AssessmentRead:
    require_role(caller, CLINICAL)

    def run(store: Store) -> AssessmentRead:
        found = visible_record(store, caller, "assessment", assessment_id, store.assessments.get)
        instruments = work.mappings.instruments
        view = service.scored_view(instruments, found)
        return AssessmentRead.of(view, _instrument_id(instruments, found))

    return work.read(run)
