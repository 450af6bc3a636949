"""Conformance of what fhirbridge emits: R4B validation plus US Core, Gravity SDOH and
fhirbridge's own profile rules, which live as data in ``mappings/profiles/``.

Call ``ensure_conformant(resource)`` before sending; ``check(resource)`` lists every finding
(errors and must-support warnings). Build a ``ConformanceChecker(load_profiles(directory))``
to use other rule files.
"""

from fhirbridge.conformance.checker import (
    ConformanceChecker,
    Finding,
    check,
    default_checker,
    ensure_conformant,
)
from fhirbridge.conformance.errors import (
    ConformanceError,
    FileProblem,
    NonConformantResource,
    ProfileFileError,
)
from fhirbridge.conformance.rules import (
    DEFAULT_PROFILES_DIR,
    ProfileSet,
    load_profile_file,
    load_profiles,
)
from fhirbridge.conformance.schema import ProfileFile, Severity

__all__ = [
    "DEFAULT_PROFILES_DIR",
    "ConformanceChecker",
    "ConformanceError",
    "FileProblem",
    "Finding",
    "NonConformantResource",
    "ProfileFile",
    "ProfileFileError",
    "ProfileSet",
    "Severity",
    "check",
    "default_checker",
    "ensure_conformant",
    "load_profile_file",
    "load_profiles",
]
