"""Copying JSON trees (dicts, lists, scalars) fast.

``copy.deepcopy`` handles any object graph, memo table and all; resources are plain JSON, and
on the push path copying them was the single largest cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["clone", "clone_rewriting_references"]


def clone(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: clone(value) for key, value in node.items()}
    if isinstance(node, list):
        return [clone(value) for value in node]
    return node


def clone_rewriting_references(node: Any, references: Mapping[str, str]) -> Any:
    """A copy in which every ``{"reference": r}`` with ``r`` in ``references`` is replaced."""
    if isinstance(node, dict):
        out = {key: clone_rewriting_references(value, references) for key, value in node.items()}
        target = out.get("reference")
        if isinstance(target, str) and target in references:
            out["reference"] = references[target]
        return out
    if isinstance(node, list):
        return [clone_rewriting_references(value, references) for value in node]
    return node
