"""Value objects as JSON: codes and goal targets have no identity and are never queried inside."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from fhirbridge.domain import Code, GoalTarget

EnumT = TypeVar("EnumT", bound=StrEnum)


def enum_value(member: StrEnum | None) -> str | None:
    return None if member is None else member.value


def enum_member(enum: type[EnumT], value: str | None) -> EnumT | None:
    return None if value is None else enum(value)


def code_to_json(code: Code) -> dict[str, Any]:
    return {"system": code.system, "code": code.code, "display": code.display}


def code_from_json(data: dict[str, Any]) -> Code:
    return Code(system=data["system"], code=data["code"], display=data.get("display"))


def optional_code_to_json(code: Code | None) -> dict[str, Any] | None:
    return None if code is None else code_to_json(code)


def optional_code_from_json(data: dict[str, Any] | None) -> Code | None:
    return None if data is None else code_from_json(data)


def codes_to_json(codes: list[Code]) -> list[Any]:
    return [code_to_json(code) for code in codes]


def codes_from_json(data: list[Any]) -> list[Code]:
    return [code_from_json(item) for item in data]


def _decimal_to_json(value: Decimal | None) -> str | None:
    # As text: a float would turn 7.1 into 7.0999999999999996 on the way back.
    return None if value is None else str(value)


def _decimal_from_json(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def target_to_json(target: GoalTarget | None) -> dict[str, Any] | None:
    if target is None:
        return None
    return {
        "measure": optional_code_to_json(target.measure),
        "value": _decimal_to_json(target.value),
        "low": _decimal_to_json(target.low),
        "high": _decimal_to_json(target.high),
        "unit": target.unit,
        "due": None if target.due is None else target.due.isoformat(),
    }


def target_from_json(data: dict[str, Any] | None) -> GoalTarget | None:
    if data is None:
        return None
    due = data.get("due")
    return GoalTarget(
        measure=optional_code_from_json(data.get("measure")),
        value=_decimal_from_json(data.get("value")),
        low=_decimal_from_json(data.get("low")),
        high=_decimal_from_json(data.get("high")),
        unit=data.get("unit"),
        due=None if due is None else date.fromisoformat(due),
    )
