from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from fhirbridge.api.access import CLINICAL, require_role, visible_patient, visible_record
from fhirbridge.api.auth import Principal
from fhirbridge.api.deps import Caller, Work
from fhirbridge.api.schemas.enrollments import (
    ConsentRead,
    ConsentUpdate,
    EnrollmentCreate,
    EnrollmentRead,
    EnrollmentUpdate,
)
from fhirbridge.api.schemas.problems import problems
from fhirbridge.domain import Enrollment
from fhirbridge.persistence import Store
from fhirbridge.services import enrollment as service
from fhirbridge.services.errors import FieldError, Rejected

router = APIRouter(prefix="/enrollments", tags=["enrollments"])


def _enrollment(store: Store, caller: Principal, enrollment_id: str) -> Enrollment:
    return visible_record(store, caller, "enrollment", enrollment_id, store.enrollments.get)


def _read(store: Store, enrollment: Enrollment) -> EnrollmentRead:
    consents = service.consents_of(store=store, enrollment_id=enrollment.id)
    return EnrollmentRead.of(enrollment, consents)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=EnrollmentRead,
    responses=problems(403, 404, 422),
)
def create_enrollment(body: EnrollmentCreate, caller: Caller, work: Work) -> JSONResponse:
    """Enroll a patient in a program together with their consent to it. An active enrollment
    must meet its program's prerequisites (``mappings/programs.yaml``), else 422 naming each
    missing field."""
    require_role(caller, CLINICAL)

    def run(store: Store) -> EnrollmentRead:
        visible_patient(store, caller, body.patient_id)
        recorded_by = body.consent.recorded_by_id or caller.staff_id
        if recorded_by is None:
            raise Rejected("enrollment", [FieldError("consent.recorded_by_id", "required")])
        new = service.NewEnrollment(
            patient_id=body.patient_id,
            program=body.program,
            start=body.start,
            status=body.status,
            end=body.end,
            risk_level=body.risk_level,
            care_manager_id=body.care_manager_id,
            billing_practitioner_id=body.billing_practitioner_id,
            conditions=list(body.conditions),
            consent=service.NewConsent(
                given_on=body.consent.given_on,
                method=body.consent.method,
                recorded_by_id=recorded_by,
                status=body.consent.status,
            ),
        )
        enrollment, consent = service.enroll(
            store=store,
            new=new,
            today=work.now().astimezone(work.tz).date(),
            prerequisites=work.mappings.programs,
        )
        return EnrollmentRead.of(enrollment, [consent])

    return work.write(run, status_code=status.HTTP_201_CREATED)


@router.get("/{enrollment_id}", responses=problems(403, 404))
def get_enrollment(enrollment_id: str, caller: Caller, work: Work) -> EnrollmentRead:
    require_role(caller, CLINICAL)

    return work.read(lambda store: _read(store, _enrollment(store, caller, enrollment_id)))


@router.patch(
    "/{enrollment_id}", response_model=EnrollmentRead, responses=problems(403, 404, 409, 422)
)
def update_enrollment(
    enrollment_id: str, body: EnrollmentUpdate, caller: Caller, work: Work
) -> JSONResponse:
    """Change an enrollment; one that is or becomes active must then meet its program's
    prerequisites (422 naming each missing field)."""
    require_role(caller, CLINICAL)

    def run(store: Store) -> EnrollmentRead:
        found = _enrollment(store, caller, enrollment_id)
        updated = service.update_enrollment(
            store=store,
            enrollment_id=found.id,
            changes=service.EnrollmentChanges(
                status=body.status,
                end=body.end,
                risk_level=body.risk_level,
                care_manager_id=body.care_manager_id,
                billing_practitioner_id=body.billing_practitioner_id,
                conditions=None if body.conditions is None else list(body.conditions),
            ),
            prerequisites=work.mappings.programs,
        )
        return _read(store, updated)

    return work.write(run)


@router.patch(
    "/{enrollment_id}/consents/{consent_id}",
    response_model=ConsentRead,
    responses=problems(403, 404, 422),
)
def update_consent(
    enrollment_id: str, consent_id: str, body: ConsentUpdate, caller: Caller, work: Work
) -> JSONResponse:
    """Change a consent's status, e.g. to ``inactive`` when the patient withdraws it."""
    require_role(caller, CLINICAL)

    def run(store: Store) -> ConsentRead:
        found = _enrollment(store, caller, enrollment_id)
        consent = service.update_consent(
            store=store,
            enrollment_id=found.id,
            consent_id=consent_id,
            changes=service.ConsentChanges(status=body.status),
        )
        return ConsentRead.model_validate(consent)

    return work.write(run)
