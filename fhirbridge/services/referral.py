"""Closed-loop referrals (Gravity SDOH pattern): a ServiceRequest (the order) and its fulfilment
Task, kept in one ``Referral`` record and pushed as both resources in the transaction that
writes it.

Requester side (this practice): ``create_referral`` sends the order (ServiceRequest ``active``,
Task ``requested``); ``change_task_status`` makes the moves Gravity leaves to the requester
(``cancelled`` with a reason -> order ``revoked``; ``entered-in-error`` -> order
``entered-in-error``). A move only the performer may make, or one the R4 Task machine forbids, is
refused with ``ReferralTransitionRefused`` (field ``task_status``) and writes nothing.

Performer side: their Task updates arrive through a pull or a subscription notification. The
pull's hooks (``referral_pull_hooks`` builds them) check every tracker move with
``ReferralTransitionGuard`` before it is applied, and hand every applied change to
``close_referral_loop``.

Checking a tracker move (``check_referral_transition(..., by=PERFORMER)`` at each step): a
rejection, failure or cancellation without a reason, or a move the machine forbids, is refused
(recorded as an invalid-transition conflict, never applied). When the status moved further than
one step since the version we hold (accepted, in progress and completed between two pulls):

- the server's history shows the versions in between (found by version id, never by counting):
  each step on that path is checked, and the history is believed: a jump it shows as one step
  is refused;
- the server keeps no history (or no longer holds our version): the jump is accepted only when
  a forward path the performer may take leads there through steps that need no reason
  (``accepted``, ``in-progress``): requested -> completed is accepted (through accepted and
  in progress), completed -> requested or requested -> rejected without a reason are not. The
  final step is checked with the reason the server gives.

Closing the loop:

- **completed**: the order becomes ``completed``; the linked goal's achievement status becomes
  ``achieved`` when the referral met a social need and the performer reported what they did
  (outputs), else ``in-progress`` (a specialist visit, or no reported activity, does not by
  itself reach a goal such as an HbA1c target: the care manager judges it at the follow-up).
  Goals already closed (completed, cancelled, rejected, entered-in-error) are left alone.
  A follow-up task for the care manager is created, due ``follow_up_days`` later.
- **rejected / failed / cancelled** (by the performer): the order stays ``active`` (the need is
  still there) and an urgent follow-up task "referral rejected: find another provider" is created.

Everything happens in the unit of work of the applied change, and every changed record is
queued for pushing through the outbox.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fhirbridge.domain import (
    AchievementStatus,
    CareTask,
    CareTaskKind,
    Code,
    EnrollmentStatus,
    GoalLifecycle,
    Party,
    Referral,
    ReferralKind,
    ReferralStatus,
    TaskPriority,
    TaskStatus,
    TaskTransitionError,
)
from fhirbridge.domain.referral import REASON_REQUIRED, check_referral_transition
from fhirbridge.persistence import EntityKind, Store
from fhirbridge.persistence.repositories.audit import AuditEvent
from fhirbridge.services import careplan
from fhirbridge.services.errors import FieldError, NotFound, Rejected, TransitionRefused
from fhirbridge.sync.pull import AfterApply, InboundChange, PullHooks

__all__ = [
    "REQUESTER_ORDER_STATUS",
    "SDOH_CATEGORIES",
    "SERVICE_SYSTEMS",
    "LoopClosed",
    "LoopPolicy",
    "NewReferral",
    "ReferralTransitionGuard",
    "ReferralTransitionRefused",
    "change_task_status",
    "close_referral_loop",
    "create_referral",
    "get_referral",
    "goal_achievement_after",
    "list_referrals",
    "referral_loop_closer",
    "referral_pull_hooks",
    "tracker_move_refusal",
]

_KIND = "referral"

# Gravity SDOHCC ValueSet SDOHCategory (code system alias ``sdohcc``): code -> display.
SDOH_CATEGORIES: Mapping[str, str] = {
    "food-insecurity": "Food Insecurity",
    "housing-instability": "Housing Instability",
    "homelessness": "Homelessness",
    "inadequate-housing": "Inadequate Housing",
    "transportation-insecurity": "Transportation Insecurity",
    "financial-insecurity": "Financial Insecurity",
    "material-hardship": "Material Hardship",
    "educational-attainment": "Educational Attainment",
    "employment-status": "Employment Status",
    "veteran-status": "Veteran Status",
    "stress": "Stress",
    "social-connection": "Social Connection",
    "intimate-partner-violence": "Intimate Partner Violence",
    "elder-abuse": "Elder Abuse",
    "personal-health-literacy": "Personal Health Literacy",
    "health-insurance-coverage-status": "Health Insurance Coverage Status",
    "medical-cost-burden": "Medical Cost Burden",
    "digital-literacy": "Digital Literacy",
    "digital-access": "Digital Access",
    "utility-insecurity": "Utility Insecurity",
    "sdoh-category-unspecified": "SDOH Category Unspecified",
}
# Code systems the ServiceRequest mapping reads for the requested service and the reason.
SERVICE_SYSTEMS = frozenset({"snomed", "loinc", "sdohcc"})
REASON_SYSTEMS = frozenset({"snomed", "icd10cm", "sdohcc"})

# What the order says once the requester moves the tracker.
REQUESTER_ORDER_STATUS: Mapping[TaskStatus, ReferralStatus] = {
    TaskStatus.DRAFT: ReferralStatus.DRAFT,
    TaskStatus.REQUESTED: ReferralStatus.ACTIVE,
    TaskStatus.CANCELLED: ReferralStatus.REVOKED,
    TaskStatus.ENTERED_IN_ERROR: ReferralStatus.ENTERED_IN_ERROR,
}
_CLOSED_ORDERS = frozenset(
    {ReferralStatus.COMPLETED, ReferralStatus.REVOKED, ReferralStatus.ENTERED_IN_ERROR}
)
_CLOSED_GOALS = frozenset(
    {
        GoalLifecycle.COMPLETED,
        GoalLifecycle.CANCELLED,
        GoalLifecycle.REJECTED,
        GoalLifecycle.ENTERED_IN_ERROR,
    }
)
NOT_DONE = frozenset({TaskStatus.REJECTED, TaskStatus.FAILED, TaskStatus.CANCELLED})
# Enrollments whose care manager owns the patient's follow-up work.
_CARING = frozenset({EnrollmentStatus.ACTIVE, EnrollmentStatus.ON_HOLD})


class ReferralTransitionRefused(TransitionRefused):
    """A tracker status the requester may not set, or a step the Task machine forbids."""

    def __init__(self, local_id: str, current: TaskStatus, target: TaskStatus, rule: str) -> None:
        super().__init__(_KIND, local_id, current.value, target.value, rule)
        self.errors = (FieldError("task_status", f"{current.value} -> {target.value}: {rule}"),)


@dataclass(frozen=True, slots=True)
class NewReferral:
    patient_id: str
    kind: ReferralKind
    service: Code
    requester_id: str
    authored_on: datetime
    reason: str | None = None
    reason_code: Code | None = None
    categories: list[str] = field(default_factory=list)  # SDOH category codes (sdohcc)
    priority: TaskPriority | None = None
    performer_reference: str | None = None  # "Organization/..."
    performer_display: str | None = None
    goal_id: str | None = None
    consent_id: str | None = None
    care_plan_id: str | None = None


@dataclass(frozen=True, slots=True)
class LoopPolicy:
    follow_up_days: int = 7
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))


@dataclass(frozen=True, slots=True)
class LoopClosed:
    """What closing the loop of one referral did."""

    referral_id: str
    task_status: TaskStatus
    order_status: ReferralStatus
    follow_up_task_id: str
    goal_id: str | None = None
    goal_achievement: AchievementStatus | None = None


# -- requester side ----------------------------------------------------------------------


def create_referral(*, store: Store, new: NewReferral, actor: str) -> Referral:
    """Send a referral: order ``active``, tracker ``requested``; both queued for the server.
    Every rule broken is listed in one ``Rejected``; nothing is written then."""
    patient = store.patients.get(new.patient_id)
    if patient is None:
        raise NotFound("patient", new.patient_id)
    errors = _referral_errors(store, new, patient.team)
    if errors:
        raise Rejected(_KIND, errors)
    referral = Referral(
        id=uuid.uuid4().hex,
        status=ReferralStatus.ACTIVE,
        patient_id=new.patient_id,
        kind=new.kind,
        service=new.service,
        categories=[Code("sdohcc", c, SDOH_CATEGORIES[c]) for c in dict.fromkeys(new.categories)],
        authored_on=new.authored_on,
        requester_id=new.requester_id,
        reason=new.reason,
        reason_code=new.reason_code,
        priority=new.priority,
        performer_reference=new.performer_reference,
        performer_display=new.performer_display,
        goal_id=new.goal_id,
        consent_id=new.consent_id,
        care_plan_id=new.care_plan_id,
        task_status=TaskStatus.REQUESTED,
    )
    store.save(referral)
    _record_move(store, referral, actor=actor, action="sent", before=None)
    if new.care_plan_id is not None:
        plan = store.care_plans.require(new.care_plan_id)
        plan.referral_ids.append(referral.id)
        store.save(plan)
    return referral


def get_referral(*, store: Store, referral_id: str) -> Referral:
    referral = store.referrals.get(referral_id)
    if referral is None:
        raise NotFound(_KIND, referral_id)
    return referral


def list_referrals(
    *, store: Store, patient_id: str, task_statuses: frozenset[TaskStatus] | None = None
) -> list[Referral]:
    """The patient's referrals, oldest first, optionally only those whose tracker is in
    ``task_statuses``."""
    return [
        r
        for r in store.referrals.list_for_patient(patient_id)
        if task_statuses is None or r.task_status in task_statuses
    ]


def change_task_status(
    *, store: Store, referral_id: str, target: TaskStatus, reason: str | None, actor: str
) -> Referral:
    """Move the tracker as the requester; the order follows (``REQUESTER_ORDER_STATUS``).
    The move joins the referral's timeline under ``actor``."""
    referral = get_referral(store=store, referral_id=referral_id)
    before = referral.task_status
    if target in REASON_REQUIRED and not (reason and reason.strip()):
        raise Rejected(_KIND, [FieldError("reason", f"required to set {target.value}")])
    try:
        referral.move_task(target, by=Party.REQUESTER, reason=reason)
    except TaskTransitionError as error:
        rule = str(error).split(": ", 1)[-1]
        raise ReferralTransitionRefused(referral_id, error.current, error.target, rule) from error
    referral.status = REQUESTER_ORDER_STATUS.get(target, referral.status)
    store.save(referral)
    _record_move(store, referral, actor=actor, action="requester moved", before=before)
    return referral


def timeline(*, store: Store, referral_id: str) -> list[AuditEvent]:
    """Who moved the referral's tracker when, oldest first: the requester's moves here and the
    performer's as pulled from the FHIR server."""
    return store.audit.for_record(EntityKind.REFERRAL, referral_id)


def _record_move(
    store: Store, referral: Referral, *, actor: str, action: str, before: TaskStatus | None
) -> None:
    store.audit.record(
        actor=actor,
        action=action,
        entity_kind=EntityKind.REFERRAL,
        local_id=referral.id,
        before=None if before is None else {"task_status": before.value},
        after={"task_status": referral.task_status.value},
    )


# -- performer side: closing the loop ---------------------------------------------------


def close_referral_loop(
    *, store: Store, before: Any, after: Any, now: datetime, policy: LoopPolicy
) -> LoopClosed | None:
    """React to an applied inbound change of a referral's tracker (see module doc).

    ``before`` and ``after`` are the local record before and after the change; anything that is
    not a referral whose tracker status moved to completed, rejected, failed or cancelled is
    ignored (None).
    """
    if not isinstance(before, Referral) or not isinstance(after, Referral):
        return None
    if before.task_status == after.task_status or after.patient_id is None:
        return None
    if after.task_status is TaskStatus.COMPLETED:
        return _completed(store, after, now, policy)
    if after.task_status in NOT_DONE:
        return _not_done(store, after, now, policy)
    return None


def referral_loop_closer(*, clock: Callable[[], datetime], policy: LoopPolicy) -> AfterApply:
    """``close_referral_loop`` in the shape of the pull's ``after_apply`` extension point."""

    def after_apply(store: Store, before: Any, after: Any) -> None:
        if _tracker_moved(before, after):
            # The performer moved the tracker on the FHIR server; named as the order names them.
            performer = after.performer_display or after.performer_reference or "performer"
            _record_move(
                store, after, actor=performer, action="performer moved", before=before.task_status
            )
        close_referral_loop(store=store, before=before, after=after, now=clock(), policy=policy)

    return after_apply


def referral_pull_hooks(*, clock: Callable[[], datetime], policy: LoopPolicy) -> PullHooks:
    """What referrals add to the pull and to notifications: the tracker-move check and the
    loop closer (see module doc)."""
    return PullHooks(
        guards=(ReferralTransitionGuard(),),
        after_apply=referral_loop_closer(clock=clock, policy=policy),
    )


class ReferralTransitionGuard:
    """The pull's inbound guard for referral trackers (see module doc)."""

    def wants_path(self, before: Any, after: Any) -> bool:
        if not _tracker_moved(before, after):
            return False
        step = [(after.task_status, after.task_status_reason)]
        return tracker_move_refusal(before.task_status, step) is not None

    def refusal(self, change: InboundChange) -> str | None:
        before, after = change.before, change.after
        if not _tracker_moved(before, after):
            return None
        final = (after.task_status, after.task_status_reason)
        refused = tracker_move_refusal(before.task_status, [final])
        if refused is None:
            return None
        if change.path is None:
            # No history to show the steps in between: the documented rule for such servers.
            return refused if _forward_path(before.task_status, final) is None else None
        steps = [(r.task_status, r.task_status_reason) for r in change.path if _is_referral(r)]
        return tracker_move_refusal(before.task_status, [*steps, final]) if steps else refused


def tracker_move_refusal(
    current: TaskStatus, steps: Sequence[tuple[TaskStatus, str | None]]
) -> str | None:
    """Why the performer may not move a tracker from ``current`` through ``steps`` (status,
    reason) one after the other; None when every step is allowed."""
    status = current
    for target, reason in steps:
        try:
            check_referral_transition(status, target, by=Party.PERFORMER, reason=reason)
        except TaskTransitionError as error:
            return str(error)
        status = target
    return None


# Steps a performer may take unseen: they need no reason, so a missing version hides nothing.
_SILENT_STEPS = (TaskStatus.ACCEPTED, TaskStatus.IN_PROGRESS)


def _forward_path(
    current: TaskStatus, final: tuple[TaskStatus, str | None]
) -> list[TaskStatus] | None:
    """The shortest performer path from ``current`` to ``final`` through silent steps, or None."""
    queue: deque[list[TaskStatus]] = deque([[]])
    while queue:
        path = queue.popleft()
        at = path[-1] if path else current
        steps = [(s, None) for s in path]
        if tracker_move_refusal(current, [*steps, final]) is None:
            return path
        for step in _SILENT_STEPS:
            fresh = step not in path and step != current
            if fresh and tracker_move_refusal(at, [(step, None)]) is None:
                queue.append([*path, step])
    return None


def _is_referral(record: Any) -> bool:
    return isinstance(record, Referral)


def _tracker_moved(before: Any, after: Any) -> bool:
    return _is_referral(before) and _is_referral(after) and before.task_status != after.task_status


def _completed(store: Store, referral: Referral, now: datetime, policy: LoopPolicy) -> LoopClosed:
    if referral.status not in _CLOSED_ORDERS:
        referral.status = ReferralStatus.COMPLETED
        # Only the order: the tracker (every other resource of a referral) is the performer's.
        store.save(referral, skip=store.sync_targets(EntityKind.REFERRAL)[1:])
    achievement = None
    if referral.goal_id is not None:
        goal = store.goals.get(referral.goal_id)
        if goal is not None and goal.lifecycle_status not in _CLOSED_GOALS:
            achievement = goal_achievement_after(referral)
            careplan.update_goal(
                store=store,
                goal_id=goal.id,
                changes=careplan.GoalChanges(achievement_status=achievement),
            )
    task = _follow_up(
        store,
        referral,
        now,
        policy,
        description="referral completed: review the outcome with the patient",
        priority=TaskPriority.ROUTINE,
    )
    return LoopClosed(
        referral.id,
        referral.task_status,
        referral.status,
        task.id,
        goal_id=referral.goal_id if achievement is not None else None,
        goal_achievement=achievement,
    )


def goal_achievement_after(referral: Referral) -> AchievementStatus:
    """The goal's achievement status once ``referral`` is completed (see module doc)."""
    reported = bool(referral.outcomes or referral.outcome_references)
    if referral.kind is ReferralKind.SOCIAL_NEED and reported:
        return AchievementStatus.ACHIEVED
    return AchievementStatus.IN_PROGRESS


def _not_done(store: Store, referral: Referral, now: datetime, policy: LoopPolicy) -> LoopClosed:
    status = referral.task_status.value
    task = _follow_up(
        store,
        referral,
        now,
        policy,
        description=f"referral {status}: find another provider",
        priority=TaskPriority.URGENT,
    )
    return LoopClosed(referral.id, referral.task_status, referral.status, task.id)


def _follow_up(
    store: Store,
    referral: Referral,
    now: datetime,
    policy: LoopPolicy,
    *,
    description: str,
    priority: TaskPriority,
) -> CareTask:
    assert referral.patient_id is not None  # checked by close_referral_loop
    today = now.astimezone(policy.tz).date()
    plan_id = referral.care_plan_id
    if plan_id is not None:
        plan = store.care_plans.get(plan_id)
        plan_id = plan.id if plan is not None and plan.patient_id == referral.patient_id else None
    return careplan.create_task(
        store=store,
        new=careplan.NewCareTask(
            patient_id=referral.patient_id,
            kind=CareTaskKind.FOLLOW_UP,
            authored_on=now,
            description=description,
            priority=priority,
            owner_id=_care_manager(store, referral),
            requester_id=None,
            due_start=today,
            due_end=today + timedelta(days=policy.follow_up_days),
            care_plan_id=plan_id,
        ),
    )


def _care_manager(store: Store, referral: Referral) -> str | None:
    """Who follows up: the care manager of the patient's current enrollment (the one the
    referral's care plan belongs to first), else whoever sent the referral."""
    assert referral.patient_id is not None
    enrollments = [
        e
        for e in store.enrollments.list_for_patient(referral.patient_id)
        if e.status in _CARING and e.care_manager_id is not None
    ]
    plan = store.care_plans.get(referral.care_plan_id) if referral.care_plan_id else None
    enrollments.sort(key=lambda e: (plan is None or e.id != plan.enrollment_id, e.start))
    if enrollments:
        return enrollments[0].care_manager_id
    if referral.requester_id is not None and store.care_team.get(referral.requester_id):
        return referral.requester_id
    return None


# -- checks ------------------------------------------------------------------------------


def _referral_errors(store: Store, new: NewReferral, team: str) -> list[FieldError]:
    """Every rule ``new`` breaks. References must be the patient's (a goal, a consent, a care
    plan) or of the patient's team (the requester), with one reason whether the record is
    missing or another team's."""
    errors: list[FieldError] = []
    unknown = [c for c in new.categories if c not in SDOH_CATEGORIES]
    if unknown:
        errors.append(FieldError("categories", f"not SDOH categories: {', '.join(unknown)}"))
    elif new.kind is ReferralKind.SOCIAL_NEED and not new.categories:
        errors.append(FieldError("categories", "a social-need referral needs an SDOH category"))
    if new.service.system not in SERVICE_SYSTEMS:
        errors.append(FieldError("service.system", _one_of(SERVICE_SYSTEMS)))
    if new.reason_code is not None and new.reason_code.system not in REASON_SYSTEMS:
        errors.append(FieldError("reason_code.system", _one_of(REASON_SYSTEMS)))
    if not (new.reason and new.reason.strip()) and new.reason_code is None:
        errors.append(FieldError("reason", "give a reason or a reason code"))
    requester = store.care_team.get(new.requester_id)
    if requester is None or requester.team != team:
        errors.append(FieldError("requester_id", "no such care team member"))
    elif requester.practitioner_reference is None:
        # The Gravity Task requires a requester; without a Practitioner it could never be sent.
        errors.append(FieldError("requester_id", "has no Practitioner reference"))
    if new.goal_id is not None:
        goal = store.goals.get(new.goal_id)
        if goal is None or goal.patient_id != new.patient_id:
            errors.append(FieldError("goal_id", "no such goal for this patient"))
    if new.consent_id is not None:
        consent = store.consents.get(new.consent_id)
        if consent is None or consent.patient_id != new.patient_id:
            errors.append(FieldError("consent_id", "no such consent for this patient"))
    if new.care_plan_id is not None:
        plan = store.care_plans.get(new.care_plan_id)
        if plan is None or plan.patient_id != new.patient_id:
            errors.append(FieldError("care_plan_id", "no such care plan for this patient"))
    return errors


def _one_of(systems: frozenset[str]) -> str:
    return f"one of {', '.join(sorted(systems))}"
