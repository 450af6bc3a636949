"""Assessment instruments (``mappings/instruments/*.yaml``), loaded and checked at start-up.

One file per instrument, named after its ``id``. A file gives the items (linkId, LOINC
question code, text, answer options with their LOINC answer codes and scores), the total's
LOINC code, the severity bands, the SDOH domains of a social-needs screen, the follow-up rules
and the measurement-based care thresholds. Checks, each failing with ``file:line: reason``:

- the schema (unknown keys, wrong types);
- link ids, question codes and the answer codes of one item are unique;
- an instrument with a total scores every option of every item (whole numbers, 0 or more);
- the bands cover 0..maximum total without a gap or an overlap, in order;
- an item's ``domain`` is one of the file's domains; every domain has an item;
- follow-up rules name real items, domains, instruments (another file), care-task kinds and
  priorities; each rule does exactly one thing.

``verify: true`` marks a code or fact not yet checked against its source (LOINC, SNOMED CT).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fhirbridge.datafiles import DataFileError, YamlDocument, parse_model, read_yaml
from fhirbridge.domain.assessment import (
    AnswerOption,
    Band,
    Comparison,
    FollowUp,
    FollowUpAction,
    Instrument,
    Item,
    Measurement,
    SdohDomain,
    Trigger,
    TriggerKind,
)
from fhirbridge.domain.codes import Code
from fhirbridge.domain.task import CareTaskKind, TaskPriority

__all__ = ["INSTRUMENTS_DIR", "Instruments", "load_instruments"]

INSTRUMENTS_DIR = "instruments"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _CodeSpec(_Strict):
    system: str
    code: str
    display: str | None = None
    verify: bool = False


class _OptionSpec(_Strict):
    code: str  # LOINC answer code
    display: str
    score: int | None = None
    positive: bool = False
    verify: bool = False


class _ItemSpec(_Strict):
    link_id: str
    code: str  # LOINC question code
    text: str
    answers: str | list[_OptionSpec]  # an answer set's name, or the options
    required: bool = True
    domain: str | None = None
    verify: bool = False


class _BandSpec(_Strict):
    low: int
    high: int
    label: str


class _DomainSpec(_Strict):
    name: str
    category: _CodeSpec
    condition: _CodeSpec
    goal: str
    goal_code: _CodeSpec | None = None
    positive_at_least: int | None = None
    verify: bool = False


class _WhenSpec(_Strict):
    of: Literal["item", "total", "domain"]
    item: str | None = None
    domain: str | None = None
    op: Literal[">", ">=", "=="] = ">="
    value: int = 0


class _TaskSpec(_Strict):
    kind: str
    priority: str = "routine"
    due_days: int = Field(default=0, ge=0, le=365)


class _ReferralSpec(_Strict):
    domain: str
    service: _CodeSpec
    priority: str = "routine"


class _FollowUpSpec(_Strict):
    id: str
    when: _WhenSpec
    description: str
    task: _TaskSpec | None = None
    propose_instrument: str | None = None
    propose_referral: _ReferralSpec | None = None
    source: str | None = None
    verify: bool = False


class _MeasurementSpec(_Strict):
    response_drop_percent: int = Field(ge=1, le=100)
    remission_below: int = Field(ge=0)


class InstrumentFile(_Strict):
    id: str
    title: str
    questionnaire: str
    panel: _CodeSpec
    total: _CodeSpec | None = None
    answer_sets: dict[str, list[_OptionSpec]] = Field(default_factory=dict)
    items: list[_ItemSpec] = Field(min_length=1)
    bands: list[_BandSpec] = Field(default_factory=list)
    domains: list[_DomainSpec] = Field(default_factory=list)
    follow_ups: list[_FollowUpSpec] = Field(default_factory=list)
    measurement: _MeasurementSpec | None = None
    source: str | None = None
    verify: bool = False


@dataclass(frozen=True)
class Instruments:
    """The loaded instruments by id."""

    by_id: dict[str, Instrument]

    def get(self, instrument_id: str) -> Instrument | None:
        return self.by_id.get(instrument_id)

    def by_questionnaire(self, canonical: str) -> Instrument | None:
        """The instrument a QuestionnaireResponse answered (canonicals are unique)."""
        return next((i for i in self.by_id.values() if i.questionnaire == canonical), None)

    def all(self) -> tuple[Instrument, ...]:
        return tuple(self.by_id[name] for name in self.ids)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(sorted(self.by_id))


def load_instruments(root: Path, *, systems: Iterable[str] | None = None) -> Instruments:
    """Every ``root/instruments/*.yaml``; none when the folder is missing. ``systems``: the
    code-system aliases of ``codesystems.yaml`` a code may name (any when None)."""
    folder = root / INSTRUMENTS_DIR
    known_systems = None if systems is None else frozenset(systems)
    loaded: dict[str, tuple[YamlDocument, InstrumentFile, Instrument]] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        document = read_yaml(path)
        spec = parse_model(InstrumentFile, document)
        if spec.id != path.stem:
            line = document.line_of(["id"])
            raise DataFileError(path, line, f"id '{spec.id}' is not the file name '{path.stem}'")
        loaded[spec.id] = (document, spec, _build(document, spec, known_systems))
    canonicals: dict[str, str] = {}
    for name, (document, spec, _) in loaded.items():
        other = canonicals.setdefault(spec.questionnaire, name)
        if other != name:
            line = document.line_of(["questionnaire"])
            raise DataFileError(document.path, line, f"questionnaire is also {other}'s")
    for document, spec, _ in loaded.values():
        for i, rule in enumerate(spec.follow_ups):
            wanted = rule.propose_instrument
            if wanted is not None and wanted not in loaded:
                line = document.line_of(["follow_ups", i, "propose_instrument"])
                raise DataFileError(document.path, line, f"no instrument '{wanted}'")
    return Instruments({name: built for name, (_, _, built) in loaded.items()})


def _build(doc: YamlDocument, spec: InstrumentFile, systems: frozenset[str] | None) -> Instrument:
    path = doc.path

    def code(c: _CodeSpec, loc: list[str | int]) -> Code:
        if systems is not None and c.system not in systems:
            raise DataFileError(path, doc.line_of(loc), f"unknown code system '{c.system}'")
        return Code(c.system, c.code, c.display)

    domains = tuple(
        SdohDomain(
            name=d.name,
            category=code(d.category, ["domains", i, "category"]),
            condition=code(d.condition, ["domains", i, "condition"]),
            goal=d.goal,
            goal_code=None if d.goal_code is None else code(d.goal_code, ["domains", i]),
            positive_at_least=d.positive_at_least,
        )
        for i, d in enumerate(spec.domains)
    )
    domain_names = [d.name for d in domains]
    _unique(doc, domain_names, lambda i: ["domains", i, "name"], "domain")
    items = tuple(_item(doc, spec, i, set(domain_names)) for i in range(len(spec.items)))
    _unique(doc, [i.link_id for i in items], lambda i: ["items", i, "link_id"], "link_id")
    _unique(doc, [i.code.code for i in items], lambda i: ["items", i, "code"], "question code")
    for i, domain in enumerate(domains):
        if not any(item.domain == domain.name for item in items):
            line = doc.line_of(["domains", i, "name"])
            raise DataFileError(path, line, f"no item screens domain '{domain.name}'")
    total = None if spec.total is None else code(spec.total, ["total"])
    instrument = Instrument(
        id=spec.id,
        title=spec.title,
        questionnaire=spec.questionnaire,
        panel=code(spec.panel, ["panel"]),
        items=items,
        total=total,
        bands=tuple(Band(b.low, b.high, b.label) for b in spec.bands),
        domains=domains,
        measurement=None
        if spec.measurement is None
        else Measurement(spec.measurement.response_drop_percent, spec.measurement.remission_below),
    )
    if total is not None:
        for i, item in enumerate(items):
            for j, option in enumerate(item.options):
                if option.score is None or option.score < 0:
                    raise DataFileError(
                        path,
                        doc.line_of(_option_loc(spec.items[i], i, j)),
                        f"item '{item.link_id}': answer '{option.code.code}' needs a score of "
                        "0 or more (the instrument has a total)",
                    )
        _check_bands(doc, spec, instrument.max_total)
    elif spec.bands:
        raise DataFileError(path, doc.line_of(["bands"]), "bands need a 'total'")
    if spec.measurement is not None and total is None:
        raise DataFileError(path, doc.line_of(["measurement"]), "measurement needs a 'total'")
    follow_ups = tuple(
        _follow_up(doc, spec, i, instrument, set(domain_names)) for i in range(len(spec.follow_ups))
    )
    _unique(doc, [f.id for f in follow_ups], lambda i: ["follow_ups", i, "id"], "follow-up id")
    return Instrument(
        id=instrument.id,
        title=instrument.title,
        questionnaire=instrument.questionnaire,
        panel=instrument.panel,
        items=instrument.items,
        total=instrument.total,
        bands=instrument.bands,
        domains=instrument.domains,
        follow_ups=follow_ups,
        measurement=instrument.measurement,
    )


def _item(doc: YamlDocument, spec: InstrumentFile, i: int, domains: set[str]) -> Item:
    raw = spec.items[i]
    path = doc.path
    if isinstance(raw.answers, str):
        options = spec.answer_sets.get(raw.answers)
        if options is None:
            line = doc.line_of(["items", i, "answers"])
            raise DataFileError(path, line, f"no answer set '{raw.answers}'")
    else:
        options = raw.answers
    if not options:
        raise DataFileError(path, doc.line_of(["items", i, "answers"]), "no answer options")
    codes = [o.code for o in options]
    duplicate = next((n for n, c in enumerate(codes) if c in codes[:n]), None)
    if duplicate is not None:
        line = doc.line_of(_option_loc(raw, i, duplicate))
        raise DataFileError(path, line, f"answer code '{codes[duplicate]}' appears twice")
    if raw.domain is not None and raw.domain not in domains:
        line = doc.line_of(["items", i, "domain"])
        raise DataFileError(path, line, f"unknown domain '{raw.domain}'")
    return Item(
        link_id=raw.link_id,
        code=Code("loinc", raw.code, raw.text),
        text=raw.text,
        options=tuple(
            AnswerOption(Code("loinc", o.code, o.display), o.display, o.score, o.positive)
            for o in options
        ),
        required=raw.required,
        domain=raw.domain,
    )


def _option_loc(item: _ItemSpec, i: int, j: int) -> list[str | int]:
    """Where answer option ``j`` of item ``i`` is written: in the item or in its answer set."""
    if isinstance(item.answers, str):
        return ["answer_sets", item.answers, j]
    return ["items", i, "answers", j]


def _check_bands(doc: YamlDocument, spec: InstrumentFile, maximum: int) -> None:
    path = doc.path
    if not spec.bands:
        return
    expected = 0
    for i, band in enumerate(spec.bands):
        line = doc.line_of(["bands", i])
        if band.high < band.low:
            raise DataFileError(path, line, f"band '{band.label}' ends before it starts")
        if band.low != expected:
            what = "a gap" if band.low > expected else "an overlap"
            raise DataFileError(
                path,
                line,
                f"band '{band.label}' starts at {band.low}: {what} (expected {expected})",
            )
        expected = band.high + 1
    if expected - 1 != maximum:
        line = doc.line_of(["bands", len(spec.bands) - 1])
        raise DataFileError(
            path, line, f"bands end at {expected - 1}, the maximum total is {maximum}"
        )


def _follow_up(
    doc: YamlDocument, spec: InstrumentFile, i: int, instrument: Instrument, domains: set[str]
) -> FollowUp:
    raw = spec.follow_ups[i]
    path = doc.path

    def fail(loc: list[str | int], reason: str) -> DataFileError:
        return DataFileError(path, doc.line_of(["follow_ups", i, *loc]), reason)

    when = raw.when
    if when.of == "item":
        if when.item is None or instrument.item(when.item) is None:
            raise fail(["when", "item"], f"no item '{when.item}'")
    elif when.of == "total":
        if instrument.total is None:
            raise fail(["when", "of"], "the instrument has no total")
    elif when.domain not in domains:
        raise fail(["when", "domain"], f"no domain '{when.domain}'")
    actions = [a for a in (raw.task, raw.propose_instrument, raw.propose_referral) if a]
    if len(actions) != 1:
        raise fail([], "a follow-up does one thing: task, propose_instrument or propose_referral")
    trigger = Trigger(
        kind=TriggerKind(when.of),
        link_id=when.item,
        comparison=Comparison(when.op),
        value=when.value,
        domain=when.domain,
    )
    if raw.task is not None:
        if raw.task.kind not in {k.value for k in CareTaskKind}:
            raise fail(["task", "kind"], f"'{raw.task.kind}' is not a care task kind")
        if raw.task.priority not in {p.value for p in TaskPriority}:
            raise fail(["task", "priority"], f"'{raw.task.priority}' is not a priority")
        return FollowUp(
            id=raw.id,
            trigger=trigger,
            action=FollowUpAction.TASK,
            description=raw.description,
            task_kind=raw.task.kind,
            priority=raw.task.priority,
            due_days=raw.task.due_days,
        )
    if raw.propose_instrument is not None:
        if raw.propose_instrument == spec.id:
            raise fail(["propose_instrument"], "an instrument cannot propose itself")
        return FollowUp(
            id=raw.id,
            trigger=trigger,
            action=FollowUpAction.PROPOSE_INSTRUMENT,
            description=raw.description,
            instrument=raw.propose_instrument,
        )
    referral = raw.propose_referral
    assert referral is not None
    if referral.domain not in domains:
        raise fail(["propose_referral", "domain"], f"no domain '{referral.domain}'")
    if referral.priority not in {p.value for p in TaskPriority}:
        raise fail(["propose_referral", "priority"], f"'{referral.priority}' is not a priority")
    return FollowUp(
        id=raw.id,
        trigger=trigger,
        action=FollowUpAction.PROPOSE_REFERRAL,
        description=raw.description,
        priority=referral.priority,
        referral_kind=referral.domain,
        service=Code(referral.service.system, referral.service.code, referral.service.display),
    )


def _unique(
    doc: YamlDocument, values: list[str], loc: Callable[[int], list[str | int]], what: str
) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            line = doc.line_of(loc(i))
            raise DataFileError(doc.path, line, f"{what} '{value}' appears twice")
        seen.add(value)
