"""Partial updates: a ``...Changes`` dataclass names the fields to change; None means "leave it"."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["apply_changes"]


def apply_changes(record: Any, changes: Any, *, skip: frozenset[str] = frozenset()) -> None:
    """Set each field of ``changes`` that is not None on ``record`` (same field names).

    Lists are copied so the record never shares one with the request. Fields in ``skip`` are
    left to the caller (a status that must go through a state machine, say).
    """
    for field in dataclasses.fields(changes):
        value = getattr(changes, field.name)
        if value is None or field.name in skip:
            continue
        setattr(record, field.name, list(value) if isinstance(value, list) else value)
