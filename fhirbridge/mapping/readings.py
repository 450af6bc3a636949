"""RPM device readings <-> FHIR Observations, by the rules in ``mappings/readings.yaml``.

Inbound, ``read_observation`` turns an Observation into what a reading needs (its subject is
still the EHR's reference: resolving it to our patient is the caller's) or refuses it with a
``ReadingRefused`` naming the element and the reason. Outbound, ``reading_to_observation``
writes a reading as the US Core profile its code calls for (blood pressure as a panel with
systolic and diastolic components, pulse oximetry with both of US Core's codes).

The file is read and checked at start-up like every mapping file (``file:line: reason``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from fhirbridge.datafiles import DataFileError, parse_model, read_yaml
from fhirbridge.domain.observation import DeviceReading, reading_id

__all__ = [
    "LOINC",
    "READINGS_FILE",
    "ObservationReading",
    "ReadingKind",
    "ReadingRefused",
    "ReadingRules",
    "device_reading",
    "load_reading_rules",
    "read_observation",
    "reading_to_observation",
    "source_of",
]

READINGS_FILE = "readings.yaml"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
UNNAMED_DEVICE = "unnamed device"
_LARGEST = Decimal(10) ** 12  # device_readings.value is NUMERIC(18, 6)
_PLACES = Decimal("0.000001")
_EXPONENT = -6  # of _PLACES

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Coding(_Strict):
    system: _Text
    code: _Text
    display: _Text | None = None


class _Coded(_Strict):
    code: _Text
    display: _Text


class _Components(_Strict):
    value: _Coded
    second_value: _Coded


class _ReadingEntry(_Strict):
    code: _Text
    display: _Text
    profile: _Text
    category: _Text
    units: list[_Text] = Field(min_length=1)
    components: _Components | None = None
    also_coded: list[_Coded] = Field(default_factory=list)


class _ReadingsFile(_Strict):
    statuses: list[_Text] = Field(min_length=1)
    manual_tag: _Coding
    categories: dict[str, _Coding]
    readings: list[_ReadingEntry] = Field(min_length=1)


@dataclass(frozen=True)
class ReadingKind:
    """One LOINC code a device reading may carry, and how it is written."""

    code: str
    display: str
    profile: str
    category: dict[str, str]  # a Coding
    units: tuple[str, ...]
    components: tuple[tuple[str, str], tuple[str, str]] | None  # (code, display) x 2
    also_coded: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ReadingRules:
    statuses: frozenset[str]
    manual_tag: dict[str, str]
    kinds: tuple[ReadingKind, ...]  # in file order: the first matching code wins

    def kind(self, code: str) -> ReadingKind | None:
        return next((k for k in self.kinds if k.code == code), None)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(k.code for k in self.kinds)


def load_reading_rules(root: Path) -> ReadingRules:
    """``root/readings.yaml``; a wrong file raises ``DataFileError`` naming file and line."""
    document = read_yaml(root / READINGS_FILE)
    spec = parse_model(_ReadingsFile, document)
    kinds: list[ReadingKind] = []
    for i, entry in enumerate(spec.readings):
        line = document.line_of(["readings", i])
        if entry.category not in spec.categories:
            known = ", ".join(spec.categories)
            raise DataFileError(
                document.path, line, f"category '{entry.category}' is not one of {known}"
            )
        if any(k.code == entry.code for k in kinds):
            raise DataFileError(document.path, line, f"code '{entry.code}' is listed twice")
        components = entry.components
        kinds.append(
            ReadingKind(
                code=entry.code,
                display=entry.display,
                profile=entry.profile,
                category=spec.categories[entry.category].model_dump(exclude_none=True),
                units=tuple(entry.units),
                components=None
                if components is None
                else (
                    (components.value.code, components.value.display),
                    (components.second_value.code, components.second_value.display),
                ),
                also_coded=tuple((c.code, c.display) for c in entry.also_coded),
            )
        )
    return ReadingRules(
        statuses=frozenset(spec.statuses),
        manual_tag=spec.manual_tag.model_dump(exclude_none=True),
        kinds=tuple(kinds),
    )


# -- inbound ------------------------------------------------------------------------------


class ReadingRefused(ValueError):
    """An Observation that cannot be a reading: ``field`` is the element, ``reason`` why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


@dataclass(frozen=True, slots=True)
class ObservationReading:
    """What an Observation says about a reading, before its subject is resolved."""

    subject: str  # the EHR's reference, e.g. "Patient/123"
    code: str
    effective_at: datetime
    day: date
    value: Decimal | None
    second_value: Decimal | None
    unit: str | None
    device: str | None
    manual: bool
    identifier: tuple[str, str] | None  # identifier[0] (system, value) when it has both
    resource_id: str | None


def read_observation(
    resource: Any, rules: ReadingRules, practice_zone: tzinfo
) -> ObservationReading:
    """The reading an Observation carries; raises ``ReadingRefused`` naming the element."""
    if not isinstance(resource, dict):
        raise ReadingRefused("(resource)", "not a JSON object")
    if resource.get("resourceType") != "Observation":
        raise ReadingRefused("resourceType", "expected Observation")
    status = resource.get("status")
    if status not in rules.statuses:
        allowed = ", ".join(sorted(rules.statuses))
        raise ReadingRefused("status", f"'{status}' is not a reading status ({allowed})")
    kind = _kind_of(resource.get("code"), rules)
    subject = _reference(resource.get("subject"), "subject", required=True)
    if subject is None or not subject.startswith("Patient/"):
        raise ReadingRefused("subject", "must reference a Patient")
    effective_at = _effective(resource, practice_zone)
    if kind.components is None:
        value, unit = _quantity(resource.get("valueQuantity"), "valueQuantity", kind)
        second_value = None
    else:
        (first_code, _), (second_code, _) = kind.components
        value, unit = _component(resource, first_code, kind)
        second_value, second_unit = _component(resource, second_code, kind)
        unit = unit or second_unit
    if value is None and second_value is not None:
        raise ReadingRefused("component", f"a {kind.code} reading without {first_code}")
    # A contained or display-only device is still a device; only a reference names one.
    has_device = isinstance(resource.get("device"), dict) and bool(resource["device"])
    device = _reference(resource.get("device"), "device", required=False)
    if device is not None and device.startswith("#"):
        device = None
    return ObservationReading(
        subject=subject,
        code=kind.code,
        effective_at=effective_at,
        day=effective_at.astimezone(practice_zone).date(),
        value=value,
        second_value=second_value,
        unit=unit,
        device=device,
        manual=not has_device or _has_tag(resource, rules.manual_tag),
        identifier=_identifier(resource.get("identifier")),
        resource_id=resource["id"] if isinstance(resource.get("id"), str) else None,
    )


def _kind_of(code: Any, rules: ReadingRules) -> ReadingKind:
    codings = code.get("coding") if isinstance(code, dict) else None
    if not isinstance(codings, list) or not codings:
        raise ReadingRefused("code", "a reading needs a LOINC code")
    carried = {c.get("code") for c in codings if isinstance(c, dict) and c.get("system") == LOINC}
    for kind in rules.kinds:
        if kind.code in carried:
            return kind
    listed = ", ".join(rules.codes)
    raise ReadingRefused("code", f"not a device reading code (one of {listed})")


def _reference(element: Any, name: str, *, required: bool) -> str | None:
    if element is None:
        if required:
            raise ReadingRefused(name, "missing")
        return None
    reference = element.get("reference") if isinstance(element, dict) else None
    if not isinstance(reference, str) or not reference:
        if required:
            raise ReadingRefused(name, "needs a literal reference such as Patient/123")
        return None
    # An absolute URL names the same resource: keep "Type/id".
    parts = reference.rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else reference


def _effective(resource: dict[str, Any], zone: tzinfo) -> datetime:
    for name in ("effectiveDateTime", "effectiveInstant"):
        if name in resource:
            return _instant(resource[name], name, zone)
    period = resource.get("effectivePeriod")
    if isinstance(period, dict) and "start" in period:
        return _instant(period["start"], "effectivePeriod.start", zone)
    raise ReadingRefused("effectiveDateTime", "a reading needs the time it was taken")


def _instant(text: Any, name: str, zone: tzinfo) -> datetime:
    if not isinstance(text, str):
        raise ReadingRefused(name, "not a dateTime")
    if len(text) == 10:  # a day without a time: midnight of that day in the practice zone
        try:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=zone)
        except ValueError as exc:
            raise ReadingRefused(name, f"'{text}' is not a date") from exc
    if len(text) < 10:
        raise ReadingRefused(name, f"'{text}' is not precise to the day")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ReadingRefused(name, f"'{text}' is not a dateTime") from exc
    if parsed.tzinfo is None:  # FHIR requires a zone with a time; read one without as UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _quantity(element: Any, name: str, kind: ReadingKind) -> tuple[Decimal | None, str | None]:
    if element is None:
        return None, None
    if not isinstance(element, dict):
        raise ReadingRefused(name, "not a Quantity")
    raw = element.get("value")
    if raw is None or isinstance(raw, bool):
        raise ReadingRefused(f"{name}.value", "a quantity needs a number")
    if type(raw) is int:  # the common case: a whole number, exact and finite
        value = Decimal(raw)
    else:
        try:
            value = raw if type(raw) is Decimal else Decimal(str(raw))
        except InvalidOperation as exc:
            raise ReadingRefused(f"{name}.value", f"'{raw}' is not a number") from exc
        if not value.is_finite():
            raise ReadingRefused(f"{name}.value", f"'{raw}' is not a number")
        if value.as_tuple().exponent < _EXPONENT:  # type: ignore[operator]
            value = value.quantize(_PLACES)  # what storage keeps: 6 decimal places
    if abs(value) >= _LARGEST:
        raise ReadingRefused(f"{name}.value", f"{raw} is out of range for a reading")
    unit = element.get("code") if element.get("system") in (UCUM, None) else None
    unit = unit if isinstance(unit, str) else element.get("unit")
    if unit is not None and unit not in kind.units:
        allowed = ", ".join(kind.units)
        raise ReadingRefused(f"{name}.code", f"unit '{unit}' is not one of {allowed}")
    return value, unit


def _component(
    resource: dict[str, Any], code: str, kind: ReadingKind
) -> tuple[Decimal | None, str | None]:
    components = resource.get("component")
    for i, component in enumerate(components if isinstance(components, list) else []):
        codings = (
            (component.get("code") or {}).get("coding") if isinstance(component, dict) else None
        )
        if any(
            isinstance(c, dict) and c.get("system") == LOINC and c.get("code") == code
            for c in codings or []
        ):
            return _quantity(component.get("valueQuantity"), f"component[{i}].valueQuantity", kind)
    return None, None


def _has_tag(resource: dict[str, Any], tag: dict[str, str]) -> bool:
    meta = resource.get("meta")
    tags = meta.get("tag") if isinstance(meta, dict) else None
    return any(
        isinstance(t, dict) and t.get("system") == tag["system"] and t.get("code") == tag["code"]
        for t in tags or []
    )


def _identifier(element: Any) -> tuple[str, str] | None:
    first = element[0] if isinstance(element, list) and element else None
    if not isinstance(first, dict):
        return None
    system, value = first.get("system"), first.get("value")
    if isinstance(system, str) and system and isinstance(value, str) and value:
        return system, value
    return None


def source_of(read: ObservationReading, server_base: str | None) -> tuple[str, str]:
    """The reading's source identifier: ``identifier[0]`` system and value, else (for a
    resource read from a FHIR server) the server's base URL and ``Observation/<id>``."""
    if read.identifier is not None:
        system, value = read.identifier
    elif server_base is not None and read.resource_id is not None:
        system, value = server_base.rstrip("/"), f"Observation/{read.resource_id}"
    else:
        raise ReadingRefused(
            "identifier", "a reading needs identifier[0] with system and value to be stored once"
        )
    if len(system) > 255 or len(value) > 255:
        raise ReadingRefused("identifier", "system and value must be 255 characters or fewer")
    return system, value


def device_reading(
    read: ObservationReading, *, patient_id: str, source: tuple[str, str]
) -> DeviceReading:
    """The reading ``read`` describes, for our patient ``patient_id``."""
    if read.device is not None and len(read.device) > 255:
        raise ReadingRefused("device", "a reference of 255 characters or fewer")
    return DeviceReading(
        id=reading_id(*source),
        patient_id=patient_id,
        code=read.code,
        effective_at=read.effective_at,
        day=read.day,
        value=read.value,
        second_value=read.second_value,
        unit=read.unit,
        device=read.device,
        manual=read.manual,
        source_system=source[0],
        source_value=source[1],
    )


# -- outbound -----------------------------------------------------------------------------


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _coding(code: str, display: str) -> dict[str, str]:
    return {"system": LOINC, "code": code, "display": display}


def _quantity_json(value: Decimal, unit: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"value": _json_number(value)}
    if unit is not None:
        out.update({"unit": unit, "system": UCUM, "code": unit})
    return out


def reading_to_observation(
    reading: DeviceReading, rules: ReadingRules, *, patient_reference: str
) -> dict[str, Any]:
    """The Observation a reading is written as (export): its profile, codes and values."""
    kind = rules.kind(reading.code)
    if kind is None:
        raise ValueError(f"reading {reading.id}: '{reading.code}' is not a device reading code")
    meta: dict[str, Any] = {"profile": [kind.profile]}
    if reading.manual:
        meta["tag"] = [dict(rules.manual_tag)]
    codings = [_coding(kind.code, kind.display)]
    codings += [_coding(code, display) for code, display in kind.also_coded]
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": reading.id,
        "meta": meta,
        "identifier": [{"system": reading.source_system, "value": reading.source_value}],
        "status": "final",
        "category": [{"coding": [dict(kind.category)]}],
        "code": {"coding": codings, "text": kind.display},
        "subject": {"reference": patient_reference},
        "effectiveDateTime": reading.effective_at.isoformat(),
    }
    if kind.components is None:
        if reading.value is not None:
            resource["valueQuantity"] = _quantity_json(reading.value, reading.unit)
    else:
        components = []
        for (code, display), value in zip(
            kind.components, (reading.value, reading.second_value), strict=True
        ):
            component: dict[str, Any] = {"code": {"coding": [_coding(code, display)]}}
            if value is not None:
                component["valueQuantity"] = _quantity_json(value, reading.unit)
            else:
                component["dataAbsentReason"] = _DATA_ABSENT
            components.append(component)
        resource["component"] = components
    if kind.components is None and reading.value is None:
        resource["dataAbsentReason"] = _DATA_ABSENT
    if reading.device is not None:
        resource["device"] = {"reference": reading.device}
    elif not reading.manual:
        resource["device"] = {"display": UNNAMED_DEVICE}  # from a device, which was not named
    return resource


_DATA_ABSENT = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
            "code": "unknown",
            "display": "Unknown",
        }
    ]
}
