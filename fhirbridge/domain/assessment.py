"""Assessments and screening: standard instruments (PHQ-2, PHQ-9, GAD-7, AHC HRSN) and what
their answers mean.

Instruments are data (``mappings/instruments/*.yaml``, loaded by ``mapping.instruments``);
this module holds their shape and the pure rules that read them:

- ``score``: the total (sum of the answered options' scores), the severity band the total
  falls in, the SDOH domains a social-needs screen found positive and the follow-ups its rules
  trigger. Nothing here knows what a follow-up becomes (a task, a referral): services decide.
- ``score_history``: measurement-based care (BHI/CoCM). The baseline is the patient's first
  scored response of the instrument (the start of the episode); a later total is a
  *response* when it dropped by at least the instrument's ``response_drop_percent`` from the
  baseline, and a *remission* when it is under ``remission_below``.

A social-needs domain is positive when any of its items has an answer marked ``positive``, or
when the scores of its items add up to ``positive_at_least`` (AHC interpersonal safety).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from fhirbridge.domain.codes import Code


class FollowUpAction(StrEnum):
    TASK = "task"  # a care task for the care team
    PROPOSE_INSTRUMENT = "propose-instrument"  # e.g. a positive PHQ-2 -> a full PHQ-9
    PROPOSE_REFERRAL = "propose-referral"  # a referral the care manager confirms


class TriggerKind(StrEnum):
    ITEM = "item"  # an item's score compared with a value
    TOTAL = "total"  # the total compared with a value
    DOMAIN = "domain"  # a social-needs domain is positive


class Comparison(StrEnum):
    GT = ">"
    GE = ">="
    EQ = "=="


@dataclass(frozen=True, slots=True)
class AnswerOption:
    code: Code  # LOINC answer code (LA...)
    display: str
    score: int | None = None  # None: the answer counts towards no total
    positive: bool = False  # a social-needs answer that screens positive


@dataclass(frozen=True, slots=True)
class Item:
    link_id: str
    code: Code  # the question's LOINC code
    text: str
    options: tuple[AnswerOption, ...]
    required: bool = True
    domain: str | None = None  # the SDOH domain the item screens

    def option(self, code: str) -> AnswerOption | None:
        for option in self.options:
            if option.code.code == code:
                return option
        return None


@dataclass(frozen=True, slots=True)
class Band:
    low: int
    high: int
    label: str


@dataclass(frozen=True, slots=True)
class SdohDomain:
    """What a positive domain leads to in the Gravity chain."""

    name: str  # food, housing, transportation, utilities, interpersonal-safety
    category: Code  # SDOH category of the observation, condition and referral
    condition: Code  # the health concern recorded when the domain is positive
    goal: str  # the goal's description
    goal_code: Code | None = None
    positive_at_least: int | None = None  # sum of the domain's item scores; None: any positive


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: TriggerKind
    link_id: str | None = None  # ITEM
    comparison: Comparison = Comparison.GE
    value: int = 0
    domain: str | None = None  # DOMAIN

    def holds(self, scored: ScoredAnswers) -> bool:
        if self.kind is TriggerKind.DOMAIN:
            return self.domain in scored.positive_domains
        if self.kind is TriggerKind.TOTAL:
            actual = scored.total
        else:
            actual = scored.item_scores.get(self.link_id or "")
        if actual is None:
            return False
        if self.comparison is Comparison.GT:
            return actual > self.value
        if self.comparison is Comparison.EQ:
            return actual == self.value
        return actual >= self.value


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A rule of the instrument file: when ``trigger`` holds, do ``action``."""

    id: str
    trigger: Trigger
    action: FollowUpAction
    description: str
    task_kind: str | None = None  # TASK: a CareTaskKind value
    priority: str | None = None  # TASK / PROPOSE_REFERRAL: a TaskPriority value
    due_days: int | None = None  # TASK: 0 = the same day
    instrument: str | None = None  # PROPOSE_INSTRUMENT
    referral_kind: str | None = None  # PROPOSE_REFERRAL: an SDOH domain name
    service: Code | None = None  # PROPOSE_REFERRAL: what is requested


@dataclass(frozen=True, slots=True)
class Measurement:
    """Measurement-based care thresholds (BHI/CoCM)."""

    response_drop_percent: int
    remission_below: int


@dataclass(frozen=True, slots=True)
class Instrument:
    id: str  # phq-9
    title: str
    questionnaire: str  # canonical URL of the Questionnaire
    panel: Code
    items: tuple[Item, ...]
    total: Code | None = None  # LOINC code of the total score
    bands: tuple[Band, ...] = ()
    domains: tuple[SdohDomain, ...] = ()
    follow_ups: tuple[FollowUp, ...] = ()
    measurement: Measurement | None = None

    def item(self, link_id: str) -> Item | None:
        for item in self.items:
            if item.link_id == link_id:
                return item
        return None

    def domain(self, name: str) -> SdohDomain | None:
        for domain in self.domains:
            if domain.name == name:
                return domain
        return None

    @property
    def max_total(self) -> int:
        return sum(max((o.score or 0) for o in item.options) for item in self.items)

    def band_of(self, total: int | None) -> str | None:
        if total is None:
            return None
        for band in self.bands:
            if band.low <= total <= band.high:
                return band.label
        return None


class AnswerProblem(ValueError):
    """An answer the instrument does not accept; ``link_id`` names the item."""

    def __init__(self, link_id: str, reason: str) -> None:
        self.link_id = link_id
        self.reason = reason
        super().__init__(f"{link_id}: {reason}")


@dataclass(frozen=True, slots=True)
class AssessmentAnswer:
    link_id: str
    answer: Code
    question: Code | None = None  # the item's LOINC code (a QuestionnaireResponse says linkId)
    score: int | None = None


@dataclass(frozen=True, slots=True)
class ScoredAnswers:
    answers: tuple[AssessmentAnswer, ...]
    item_scores: Mapping[str, int]
    total: int | None
    band: str | None
    positive_domains: tuple[str, ...]
    positive_link_ids: tuple[str, ...]  # items whose answers made a domain positive
    follow_ups: tuple[FollowUp, ...] = ()


def check_answers(instrument: Instrument, answers: Mapping[str, str]) -> list[AnswerProblem]:
    """Every problem with ``answers`` (linkId -> LOINC answer code): unknown items, answers
    the item does not offer, required items left out."""
    problems = [
        AnswerProblem(link_id, f"not an item of {instrument.id}")
        for link_id in answers
        if instrument.item(link_id) is None
    ]
    for item in instrument.items:
        code = answers.get(item.link_id)
        if code is None:
            if item.required:
                problems.append(AnswerProblem(item.link_id, "required item not answered"))
        elif item.option(code) is None:
            offered = ", ".join(o.code.code for o in item.options)
            problems.append(AnswerProblem(item.link_id, f"'{code}' is not an answer ({offered})"))
    return problems


def score(instrument: Instrument, answers: Mapping[str, str]) -> ScoredAnswers:
    """Score checked answers (see ``check_answers``); raises AnswerProblem on the first bad one."""
    problems = check_answers(instrument, answers)
    if problems:
        raise problems[0]
    chosen: list[AssessmentAnswer] = []
    item_scores: dict[str, int] = {}
    for item in instrument.items:
        code = answers.get(item.link_id)
        if code is None:
            continue
        option = item.option(code)
        assert option is not None  # checked above
        chosen.append(AssessmentAnswer(item.link_id, option.code, item.code, option.score))
        if option.score is not None:
            item_scores[item.link_id] = option.score
    total = sum(item_scores.values()) if instrument.total is not None else None
    positive_domains: list[str] = []
    positive_items: list[str] = []
    for domain in instrument.domains:
        items = [i for i in instrument.items if i.domain == domain.name]
        if domain.positive_at_least is not None:
            hits = [i.link_id for i in items if i.link_id in item_scores]
            if sum(item_scores[link] for link in hits) >= domain.positive_at_least:
                positive_domains.append(domain.name)
                positive_items.extend(hits)
            continue
        hits = [
            i.link_id
            for i in items
            if i.link_id in answers and (o := i.option(answers[i.link_id])) and o.positive
        ]
        if hits:
            positive_domains.append(domain.name)
            positive_items.extend(hits)
    scored = ScoredAnswers(
        answers=tuple(chosen),
        item_scores=item_scores,
        total=total,
        band=instrument.band_of(total),
        positive_domains=tuple(positive_domains),
        positive_link_ids=tuple(positive_items),
    )
    triggered = tuple(f for f in instrument.follow_ups if f.trigger.holds(scored))
    return ScoredAnswers(
        answers=scored.answers,
        item_scores=scored.item_scores,
        total=scored.total,
        band=scored.band,
        positive_domains=scored.positive_domains,
        positive_link_ids=scored.positive_link_ids,
        follow_ups=triggered,
    )


# -- records -------------------------------------------------------------------------------


class AssessmentStatus(StrEnum):
    COMPLETED = "completed"
    AMENDED = "amended"
    ENTERED_IN_ERROR = "entered-in-error"


@dataclass(slots=True)
class AssessmentResponse:
    """One completed instrument: the answers as given, with the score they earned."""

    id: str
    patient_id: str
    # The instrument answered, by its Questionnaire's canonical URL (what the resource says;
    # ``Instrument.questionnaire``): the instrument's id is the installation's file name.
    questionnaire: str
    authored: datetime
    status: AssessmentStatus = AssessmentStatus.COMPLETED
    author_id: str | None = None  # the CareTeamMember who administered it
    answers: list[AssessmentAnswer] = field(default_factory=list)
    total: int | None = None
    band: str | None = None
    positive_domains: list[str] = field(default_factory=list)


class ScreeningStatus(StrEnum):
    FINAL = "final"
    AMENDED = "amended"
    ENTERED_IN_ERROR = "entered-in-error"


@dataclass(slots=True)
class ScreeningObservation:
    """One answer (or the total) of an assessment as an observation of the patient."""

    id: str
    patient_id: str
    code: Code  # the question's (or the total's) LOINC code
    effective: datetime
    status: ScreeningStatus = ScreeningStatus.FINAL
    assessment_id: str | None = None  # the response it was derived from
    categories: list[Code] = field(default_factory=list)  # survey, SDOH category
    value_code: Code | None = None  # the answer
    value_integer: int | None = None  # a score
    performer_id: str | None = None


class ConcernStatus(StrEnum):
    ACTIVE = "active"
    RESOLVED = "resolved"
    INACTIVE = "inactive"


@dataclass(slots=True)
class HealthConcern:
    """A social need (or other concern) found by screening, with the answers as evidence."""

    id: str
    patient_id: str
    code: Code
    clinical_status: ConcernStatus = ConcernStatus.ACTIVE
    categories: list[Code] = field(default_factory=list)  # health-concern, SDOH category
    recorded: date | None = None
    recorder_id: str | None = None
    evidence_ids: list[str] = field(default_factory=list)  # ScreeningObservation ids


def rescored(instrument: Instrument, response: AssessmentResponse) -> AssessmentResponse:
    """``response`` with question codes, scores, total, band and positive domains as the
    instrument gives them, when it carries the answers only (read back from a FHIR server or a
    bulk file: a QuestionnaireResponse says linkId and answer). Answers the instrument does
    not accept are left as they are, unscored."""
    if all(a.question is not None for a in response.answers):
        return response
    try:
        scored = score(instrument, {a.link_id: a.answer.code for a in response.answers})
    except AnswerProblem:
        return response
    return dataclasses.replace(
        response,
        answers=list(scored.answers),
        total=scored.total,
        band=scored.band,
        positive_domains=list(scored.positive_domains),
    )


# -- measurement-based care -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    assessment_id: str
    authored: datetime
    total: int | None
    band: str | None
    baseline: bool
    change_percent: Decimal | None  # drop from baseline, positive = better
    response: bool | None  # None: the instrument defines no measurement-based care
    remission: bool | None


def score_history(
    instrument: Instrument, responses: Sequence[AssessmentResponse]
) -> list[HistoryPoint]:
    """Responses of one instrument, oldest first, judged against the first scored one."""
    ordered = sorted(
        (r for r in responses if r.questionnaire == instrument.questionnaire),
        key=lambda r: (r.authored, r.id),
    )
    baseline = next((r for r in ordered if r.total is not None), None)
    rules = instrument.measurement
    points = []
    for r in ordered:
        change: Decimal | None = None
        response: bool | None = None
        remission: bool | None = None
        if baseline is not None and baseline.total and r.total is not None:
            change = (Decimal(baseline.total - r.total) * 100 / baseline.total).quantize(
                Decimal("0.1")
            )
        if rules is not None and r.total is not None:
            remission = r.total < rules.remission_below
            response = (
                r is not baseline
                and baseline is not None
                and baseline.total is not None
                and baseline.total > 0
                and (baseline.total - r.total) * 100 >= rules.response_drop_percent * baseline.total
            )
        points.append(
            HistoryPoint(
                assessment_id=r.id,
                authored=r.authored,
                total=r.total,
                band=r.band,
                baseline=r is baseline,
                change_percent=change,
                response=response,
                remission=remission,
            )
        )
    return points


def due_date(authored: datetime, days: int) -> date:
    """The day a follow-up is due, ``days`` after the (local) day of the response."""
    return date.fromordinal(authored.date().toordinal() + days)
