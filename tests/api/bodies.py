"""Valid request bodies from fixtures/api, for tests to vary one field at a time."""

from __future__ import annotations

import json
from typing import Any

from tests.api.support import FIXTURES


def enrollment_body(**changes: Any) -> dict[str, Any]:
    """The active CCM enrollment of fixtures/api/enrollment.json (it meets the program's
    prerequisites), with ``changes`` applied."""
    body: dict[str, Any] = json.loads((FIXTURES / "enrollment.json").read_text())
    body.update(changes)
    return body
