"""``transform: record`` (the engine's one addition for assessments): a list field whose items
are small records, each mapped into a backbone element by the rule's own ``fields``. Checked at
load time like any rule; applied and read back item by item."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.datafiles import DataFileError
from fhirbridge.domain import AssessmentAnswer, Code
from fhirbridge.mapping.loader import load_mappings
from tests.mapping.assessment_records import context, records
from tests.mapping.support import mappings

ANSWERS = """  - field: answers
    element: item
    transform: record
    fields:
      - {field: link_id, element: linkId}
      - {field: answer, element: "answer[0].valueCoding", transform: coding, systems: [loinc]}
"""


def _with_assessment(tmp_path: Path, replacement: str) -> Path:
    root = tmp_path / "mappings"
    shutil.copytree(PROJECT_ROOT / "mappings", root)
    path = root / "resources" / "assessment.yaml"
    text = path.read_text(encoding="utf-8")
    assert ANSWERS in text
    path.write_text(text.replace(ANSWERS, replacement), encoding="utf-8")
    return root


def _line_of(root: Path, text: str) -> int:
    lines = (root / "resources" / "assessment.yaml").read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


@pytest.mark.parametrize(
    ("replacement", "reason"),
    [
        pytest.param(
            ANSWERS.replace("element: linkId", "element: linkIdd"),
            "QuestionnaireResponseItem has no element 'linkIdd'",
            id="unknown-child-element",
        ),
        pytest.param(
            ANSWERS.replace("field: link_id", "field: link"),
            "AssessmentAnswer has no field 'link'",
            id="unknown-item-field",
        ),
        pytest.param(
            ANSWERS.replace("    transform: record\n", ""),
            "'fields' go with 'transform: record'",
            id="fields-without-record",
        ),
        pytest.param(
            ANSWERS.replace("field: answers", "field: questionnaire"),
            "transform 'record' maps a list of records",
            id="record-on-a-string",
        ),
    ],
)
def test_a_bad_record_rule_names_the_file_and_the_rule_line(
    tmp_path: Path, replacement: str, reason: str
) -> None:
    root = _with_assessment(tmp_path, replacement)

    with pytest.raises(DataFileError) as raised:
        load_mappings(root)

    assert raised.value.path == root / "resources" / "assessment.yaml"
    assert raised.value.line == _line_of(root, "- field: ")
    assert reason in raised.value.reason


def test_each_record_becomes_one_item_in_order_and_reads_back() -> None:
    mapping = mappings().get("assessment", "QuestionnaireResponse")
    record = next(r for c, r in records() if c == "assessment")

    resource = mapping.to_fhir(record, context())

    assert [i["linkId"] for i in resource["item"]] == [a.link_id for a in record.answers]
    back = mapping.from_fhir(resource, context())["answers"]
    assert back == [AssessmentAnswer(a.link_id, a.answer) for a in record.answers]


def test_a_changed_answer_rewrites_its_item_and_keeps_the_rest_verbatim() -> None:
    mapping = mappings().get("assessment", "QuestionnaireResponse")
    record = next(r for c, r in records() if c == "assessment")
    server = mapping.to_fhir(record, context())
    server["item"][1]["text"] = "kept: not ours to drop"
    record.answers[0] = AssessmentAnswer(record.answers[0].link_id, Code("loinc", "LA6571-9"))

    updated = mapping.to_fhir(record, context(), base=server)

    assert updated["item"][0]["answer"][0]["valueCoding"]["code"] == "LA6571-9"
    assert updated["item"][1] == server["item"][1]
