"""Fixtures for the conformance tests: the shipped profiles and resource files to check."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fhirbridge.conformance import ConformanceChecker, load_profiles

CONFORMANCE_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "conformance"

LoadResource = Callable[[str], dict[str, Any]]


def read_resource(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CONFORMANCE_FIXTURES / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def checker() -> ConformanceChecker:
    return ConformanceChecker(load_profiles())


@pytest.fixture
def resource() -> LoadResource:
    """Load a resource from fixtures/conformance/ (a fresh dict each time)."""
    return read_resource
