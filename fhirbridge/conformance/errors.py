"""Errors of the conformance layer.

::

    ConformanceError
    ├── ProfileFileError          a profile rule file is malformed (names file, line, reason);
    │                             raised at start-up, never while checking a resource
    └── NonConformantResource     a resource fhirbridge was about to send breaks a rule
                                  (carries the error-level findings)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fhirbridge.conformance.checker import Finding

__all__ = ["ConformanceError", "FileProblem", "NonConformantResource", "ProfileFileError"]


class ConformanceError(Exception):
    """Root of the conformance errors."""


@dataclass(frozen=True, slots=True)
class FileProblem:
    line: int | None  # 1-based; None when the problem is the file as a whole
    reason: str

    def render(self, file: Path) -> str:
        where = f"{file}:{self.line}" if self.line is not None else str(file)
        return f"{where}: {self.reason}"


class ProfileFileError(ConformanceError):
    """A profile rule file that cannot be loaded; lists every problem found in it."""

    def __init__(self, file: Path, problems: Sequence[FileProblem]) -> None:
        if not problems:
            raise ValueError("a ProfileFileError needs at least one problem")
        self.file = file
        self.problems = tuple(problems)
        super().__init__("\n".join(problem.render(file) for problem in self.problems))

    @property
    def line(self) -> int | None:
        """The line of the first problem, the one to fix first."""
        return self.problems[0].line

    @property
    def reason(self) -> str:
        return self.problems[0].reason


class NonConformantResource(ConformanceError):
    """A resource breaks error-level profile rules, so it must not be sent."""

    def __init__(self, resource: str, findings: Sequence[Finding]) -> None:
        if not findings:
            raise ValueError("a NonConformantResource needs at least one finding")
        self.resource = resource
        self.findings = tuple(findings)
        details = "; ".join(
            f"{finding.element} [{finding.rule}]: {finding.message}" for finding in self.findings
        )
        super().__init__(f"{resource} does not conform: {details}")
