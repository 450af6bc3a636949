"""Partial updates change exactly the fields a request names."""

from __future__ import annotations

from dataclasses import dataclass, field

from fhirbridge.services.changes import apply_changes


@dataclass
class _Record:
    title: str = "old"
    status: str = "draft"
    ids: list[str] = field(default_factory=lambda: ["a"])


@dataclass(frozen=True)
class _Changes:
    title: str | None = None
    status: str | None = None
    ids: list[str] | None = None


def test_fields_left_none_are_not_touched() -> None:
    record = _Record()

    apply_changes(record, _Changes(title="new"))

    assert record == _Record(title="new")


def test_lists_are_copied_not_shared() -> None:
    record = _Record()
    given = ["b", "c"]

    apply_changes(record, _Changes(ids=given))
    given.append("d")

    assert record.ids == ["b", "c"]


def test_skipped_fields_are_left_to_the_caller() -> None:
    record = _Record()

    apply_changes(record, _Changes(title="new", status="active"), skip=frozenset({"status"}))

    assert (record.title, record.status) == ("new", "draft")
