"""Rewrite the golden FHIR fixtures from the demo caseload: `python -m tests.mapping.regen_golden`.

Review the diff by hand before committing: goldens are the specification of the mapping.
"""

from __future__ import annotations

import json

from fhir.resources.R4B import get_fhir_model_class

from tests.mapping.support import GOLDEN, demo_context, demo_records, golden_path, mappings


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    ctx = demo_context()
    for concept, record in demo_records():
        for mapping in mappings().for_concept(concept):
            resource = mapping.to_fhir(record, ctx)
            model = get_fhir_model_class(mapping.resource).model_validate(resource)
            ordered = json.loads(model.model_dump_json(exclude_none=True))
            path = golden_path(mapping, record)
            path.write_text(json.dumps(ordered, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
