"""Code systems and code tables: how domain enums and codes are spelled in FHIR."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fhirbridge.domain.codes import Code

__all__ = ["CodeTable", "Terminology"]


@dataclass(frozen=True, slots=True)
class CodeTable:
    """Domain enum member <-> FHIR code (``kind == "code"``) or codings (``"codings"``)."""

    name: str
    enum: type[StrEnum]
    kind: str
    codes: dict[StrEnum, str] = field(default_factory=dict)
    codings: dict[StrEnum, tuple[dict[str, str], ...]] = field(default_factory=dict)
    # (system URI, code) -> member, only for codings that name exactly one member
    _reverse: dict[tuple[str, str], StrEnum] = field(default_factory=dict)

    def code_for(self, member: StrEnum) -> str:
        return self.codes[member]

    def member_for_code(self, code: str) -> StrEnum | None:
        for member, value in self.codes.items():
            if value == code:
                return member
        return None

    def codings_for(self, member: StrEnum) -> list[dict[str, str]]:
        return [dict(c) for c in self.codings[member]]

    def member_for_coding(self, coding: dict[str, Any]) -> StrEnum | None:
        return self._reverse.get((str(coding.get("system")), str(coding.get("code"))))

    def owns_coding(self, coding: dict[str, Any]) -> bool:
        return (str(coding.get("system")), str(coding.get("code"))) in self._reverse


@dataclass(frozen=True, slots=True)
class Terminology:
    """Code-system aliases (``snomed`` -> URI), extension aliases and code tables."""

    systems: dict[str, str]
    extensions: dict[str, str]
    tables: dict[str, CodeTable]

    def uri(self, alias: str) -> str:
        return self.systems[alias]

    def alias(self, uri: str) -> str | None:
        for name, value in self.systems.items():
            if value == uri:
                return name
        return None

    def coding(self, code: Code) -> dict[str, str]:
        out = {"system": self.uri(code.system), "code": code.code}
        if code.display is not None:
            out["display"] = code.display
        return out

    def code(self, coding: dict[str, Any]) -> Code | None:
        alias = self.alias(str(coding.get("system")))
        if alias is None or not isinstance(coding.get("code"), str):
            return None
        display = coding.get("display")
        return Code(alias, coding["code"], display if isinstance(display, str) else None)
