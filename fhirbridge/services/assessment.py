"""Assessments and screening: record a response with its follow-ups, read a score history.

``record_assessment`` checks the answers against the instrument (``mappings/instruments``),
scores them (``domain.assessment.score``) and writes, in the caller's unit of work, the
response and everything its rules ask for:

- an Observation for the total and one per answered item (US Core Observation Screening
  Assessment, category ``survey``; an SDOH item also carries its domain's category);
- per positive social-needs domain, the Gravity chain: a health concern (Condition,
  ``health-concern`` + the SDOH category, evidence -> the domain's positive answers), a
  *proposed* Goal, and, when a rule says so, a *proposed* referral;
- follow-up tasks: a ``task`` rule becomes a CareTask (PHQ-9 item 9 above 0 -> urgent, due the
  same day); a ``propose-instrument`` rule (PHQ-2 of 3 or more -> PHQ-9) becomes a routine
  CareTask due the same day, so it lands on the worklist.

The proposed referral is a ``Referral`` whose order is ``draft`` and whose tracker is
``draft`` (Gravity: only the requester sets draft). It is stored but not queued for the FHIR
server: a screening answer is not yet an order. The care manager confirms it by moving the
tracker to ``requested`` (``services.referral.change_task_status``, the referral routes'
existing PATCH); the order becomes ``active`` and the ServiceRequest + Task are sent as for any
referral. Discarding it is ``cancelled`` with a reason.

"Same day" and a goal's start are the day of the response in the practice's time zone.
Everything is keyword-only; nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from fhirbridge.domain import (
    AssessmentResponse,
    CareTask,
    CareTaskKind,
    Code,
    Goal,
    GoalLifecycle,
    HealthConcern,
    Referral,
    ReferralKind,
    ReferralStatus,
    ScreeningObservation,
    TaskPriority,
    TaskStatus,
)
from fhirbridge.domain.assessment import (
    FollowUp,
    FollowUpAction,
    HistoryPoint,
    Instrument,
    SdohDomain,
    check_answers,
    rescored,
    score,
    score_history,
)
from fhirbridge.mapping.instruments import Instruments
from fhirbridge.persistence import Store
from fhirbridge.services.errors import FieldError, NotFound, Rejected

__all__ = [
    "HEALTH_CONCERN",
    "SURVEY",
    "NewAssessment",
    "Recorded",
    "assessment_history",
    "get_assessment",
    "record_assessment",
    "scored_view",
]

_KIND = "assessment"
SURVEY = Code("observation-category", "survey", "Survey")
HEALTH_CONCERN = Code("condition-category", "health-concern", "Health Concern")
# A proposed referral is kept here until the care manager confirms it (see module doc).
_REFERRAL_RESOURCES = ("ServiceRequest", "Task")


@dataclass(frozen=True, slots=True)
class NewAssessment:
    patient_id: str
    instrument: str
    answers: Mapping[str, str]  # linkId -> LOINC answer code
    authored: datetime
    author_id: str | None = None


@dataclass(slots=True)
class Recorded:
    """A response and everything its rules created."""

    assessment: AssessmentResponse
    observations: list[ScreeningObservation] = field(default_factory=list)
    concerns: list[HealthConcern] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    referrals: list[Referral] = field(default_factory=list)
    tasks: list[CareTask] = field(default_factory=list)
    proposed_instruments: list[str] = field(default_factory=list)
    follow_ups: list[str] = field(default_factory=list)  # ids of the rules that fired


def record_assessment(
    *, store: Store, instruments: Instruments, new: NewAssessment, tz: ZoneInfo
) -> Recorded:
    """Score and store a response with its follow-ups. Every problem is listed in one
    ``Rejected`` (field ``answers.<linkId>`` for an answer); nothing is written then."""
    patient = store.patients.get(new.patient_id)
    if patient is None:
        raise NotFound("patient", new.patient_id)
    instrument = instruments.get(new.instrument)
    if instrument is None:
        known = ", ".join(instruments.ids)
        raise Rejected(_KIND, [FieldError("instrument", f"unknown instrument (one of {known})")])
    errors = [
        FieldError(f"answers.{p.link_id}", p.reason) for p in check_answers(instrument, new.answers)
    ]
    if new.author_id is not None:
        author = store.care_team.get(new.author_id)
        if author is None or author.team != patient.team:
            errors.append(FieldError("author_id", "no such care team member"))
    if new.authored.tzinfo is None:
        errors.append(FieldError("authored", "needs a time zone"))
    if errors:
        raise Rejected(_KIND, errors)
    scored = score(instrument, new.answers)
    today = new.authored.astimezone(tz).date()
    response = AssessmentResponse(
        id=_new_id(),
        patient_id=new.patient_id,
        questionnaire=instrument.questionnaire,
        authored=new.authored,
        author_id=new.author_id,
        answers=list(scored.answers),
        total=scored.total,
        band=scored.band,
        positive_domains=list(scored.positive_domains),
    )
    store.save(response, new=True)
    recorded = Recorded(response, follow_ups=[f.id for f in scored.follow_ups])
    by_item = _observations(store, instrument, response, recorded)
    goals: dict[str, Goal] = {}
    for name in scored.positive_domains:
        domain = instrument.domain(name)
        assert domain is not None  # the loader checked the names
        evidence = [
            by_item[link]
            for link in scored.positive_link_ids
            if _domain_of(instrument, link) == name
        ]
        goals[name] = _gravity_chain(store, domain, response, evidence, today, recorded)
    for rule in scored.follow_ups:
        _follow_up(store, instrument, rule, response, today, goals, recorded)
    return recorded


def get_assessment(
    *, store: Store, instruments: Instruments, assessment_id: str
) -> AssessmentResponse:
    found = store.assessments.get(assessment_id)
    if found is None:
        raise NotFound(_KIND, assessment_id)
    return scored_view(instruments, found)


def scored_view(instruments: Instruments, response: AssessmentResponse) -> AssessmentResponse:
    """The response with its scores (``domain.assessment.rescored``: an imported response
    carries answers only) when its instrument is installed."""
    instrument = instruments.by_questionnaire(response.questionnaire)
    return response if instrument is None else rescored(instrument, response)


def assessment_history(
    *, store: Store, instruments: Instruments, patient_id: str, instrument: str | None
) -> list[tuple[AssessmentResponse, HistoryPoint]]:
    """The patient's responses oldest first, each judged against its instrument's baseline
    (the first scored response: see ``domain.assessment.score_history``)."""
    wanted = None if instrument is None else instruments.get(instrument)
    if instrument is not None and wanted is None:
        known = ", ".join(instruments.ids)
        raise Rejected(_KIND, [FieldError("instrument", f"unknown instrument (one of {known})")])
    responses = [
        scored_view(instruments, r)
        for r in store.assessments.history(
            patient_id, None if wanted is None else wanted.questionnaire
        )
    ]
    out: list[tuple[AssessmentResponse, HistoryPoint]] = []
    by_id = {r.id: r for r in responses}
    for canonical in dict.fromkeys(r.questionnaire for r in responses):
        definition = instruments.by_questionnaire(canonical)
        if definition is None:
            continue  # an instrument no longer installed: its responses stay, unjudged
        for point in score_history(definition, responses):
            out.append((by_id[point.assessment_id], point))
    out.sort(key=lambda pair: (pair[0].authored, pair[0].id))
    return out


# -- what a response leads to ------------------------------------------------------------


def _observations(
    store: Store, instrument: Instrument, response: AssessmentResponse, recorded: Recorded
) -> dict[str, ScreeningObservation]:
    by_item: dict[str, ScreeningObservation] = {}
    if instrument.total is not None and response.total is not None:
        total = _observation(response, instrument.total, [SURVEY])
        total.value_integer = response.total
        store.save(total, new=True)
        recorded.observations.append(total)
    for answer in response.answers:
        item = instrument.item(answer.link_id)
        assert item is not None
        categories = [SURVEY]
        domain = None if item.domain is None else instrument.domain(item.domain)
        if domain is not None:
            categories.append(domain.category)
        observation = _observation(response, item.code, categories)
        observation.value_code = answer.answer
        store.save(observation, new=True)
        recorded.observations.append(observation)
        by_item[answer.link_id] = observation
    return by_item


def _observation(
    response: AssessmentResponse, code: Code, categories: list[Code]
) -> ScreeningObservation:
    return ScreeningObservation(
        id=_new_id(),
        patient_id=response.patient_id,
        code=code,
        effective=response.authored,
        assessment_id=response.id,
        categories=list(categories),
        performer_id=response.author_id,
    )


def _gravity_chain(
    store: Store,
    domain: SdohDomain,
    response: AssessmentResponse,
    evidence: list[ScreeningObservation],
    today: date,
    recorded: Recorded,
) -> Goal:
    """Observation -> Condition -> Goal for one positive domain; the goal is returned for the
    referral a rule may propose."""
    concern = HealthConcern(
        id=_new_id(),
        patient_id=response.patient_id,
        code=domain.condition,
        categories=[HEALTH_CONCERN, domain.category],
        recorded=today,
        recorder_id=response.author_id,
        evidence_ids=[o.id for o in evidence],
    )
    store.save(concern, new=True)
    recorded.concerns.append(concern)
    goal = Goal(
        id=_new_id(),
        patient_id=response.patient_id,
        lifecycle_status=GoalLifecycle.PROPOSED,
        description=domain.goal,
        description_code=domain.goal_code,
        start=today,
        expressed_by=response.author_id,
        concern_ids=[concern.id],  # Goal.addresses -> the Condition, once it is on the server
    )
    store.save(goal, new=True)
    recorded.goals.append(goal)
    return goal


def _follow_up(
    store: Store,
    instrument: Instrument,
    rule: FollowUp,
    response: AssessmentResponse,
    today: date,
    goals: Mapping[str, Goal],
    recorded: Recorded,
) -> None:
    if rule.action is FollowUpAction.PROPOSE_REFERRAL:
        domain = instrument.domain(rule.referral_kind or "")
        goal = goals.get(rule.referral_kind or "")
        if domain is None or goal is None or rule.service is None:
            return  # a referral rule fires only with its domain positive (the trigger)
        referral = Referral(
            id=_new_id(),
            status=ReferralStatus.DRAFT,
            patient_id=response.patient_id,
            kind=ReferralKind.SOCIAL_NEED,
            service=rule.service,
            categories=[domain.category],
            authored_on=response.authored,
            requester_id=response.author_id,
            reason=rule.description,
            reason_code=domain.condition,
            priority=TaskPriority(rule.priority or TaskPriority.ROUTINE.value),
            goal_id=goal.id,
            task_status=TaskStatus.DRAFT,
        )
        store.save(referral, new=True, skip=_REFERRAL_RESOURCES)
        recorded.referrals.append(referral)
        return
    if rule.action is FollowUpAction.PROPOSE_INSTRUMENT:
        assert rule.instrument is not None
        recorded.proposed_instruments.append(rule.instrument)
        kind, priority, days = CareTaskKind.FOLLOW_UP, TaskPriority.ROUTINE, 0
    else:
        kind = CareTaskKind(rule.task_kind or CareTaskKind.FOLLOW_UP.value)
        priority = TaskPriority(rule.priority or TaskPriority.ROUTINE.value)
        days = rule.due_days or 0
    task = CareTask(
        id=_new_id(),
        status=TaskStatus.REQUESTED,
        patient_id=response.patient_id,
        kind=kind,
        authored_on=response.authored,
        description=rule.description,
        priority=priority,
        owner_id=_care_manager(store, response),
        requester_id=response.author_id,
        due_start=today,
        due_end=today + timedelta(days=days),
    )
    store.save(task, new=True)
    recorded.tasks.append(task)


def _care_manager(store: Store, response: AssessmentResponse) -> str | None:
    """Who owns the follow-up: the care manager of an active enrollment, else the author."""
    for enrollment in store.enrollments.list_for_patient(response.patient_id):
        if enrollment.status.value in ("active", "on-hold") and enrollment.care_manager_id:
            return enrollment.care_manager_id
    return response.author_id


def _domain_of(instrument: Instrument, link_id: str) -> str | None:
    item = instrument.item(link_id)
    return None if item is None else item.domain


def _new_id() -> str:
    return uuid.uuid4().hex
