"""Conformance checking CPU: per resource, as the sync worker checks what it is about to send.

    .venv/bin/python benchmarks/conformance_check.py [--patients 900 --repeats 5 --profile]

The resources are those ``sync push`` would send for a synthetic caseload (six a patient),
mapped by the mapping engine into transaction bundles with the same placeholders the worker
uses (``benchmarks/push_throughput.py``'s ``prepared_bundles``). Each repeat checks every
resource once with a fresh ``ConformanceChecker`` over profiles loaded before the clock starts,
as a worker checks each outbound resource once; the repeated-element memory of the R4B
validation starts empty each time, as in a new worker.

Prints process CPU (``time.process_time``) per resource for each repeat and the best, and
the best of R4B model validation alone and of the profile rules alone; plus the one-off
profile load: cold (the first load in this process, which also resolves every rule path
against the R4B models) and again (what a second ``load_profiles`` call costs).
``--profile`` adds a cProfile of one repeat, sorted by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from push_throughput import prepared_bundles  # noqa: E402

from fhirbridge.conformance import ConformanceChecker, ProfileSet, load_profiles  # noqa: E402
from fhirbridge.conformance.structure import ModelValidator  # noqa: E402
from fhirbridge.fhir import Capabilities  # noqa: E402
from fhirbridge.mapping.loader import load_mappings  # noqa: E402
from fhirbridge.synthetic import RESOURCES_PER_PATIENT, synthetic_caseload  # noqa: E402

# A server that searches identifiers for every type: entries are conditional creates and refer
# to each other through urn:uuid placeholders, as they do against sekmet.
_TYPES = ["CarePlan", "Consent", "Encounter", "EpisodeOfCare", "Goal", "Task", "ServiceRequest"]
_CAPABILITIES = Capabilities.from_statement(
    {
        "rest": [
            {
                "mode": "server",
                "resource": [{"type": t, "searchParam": [{"name": "identifier"}]} for t in _TYPES],
            }
        ]
    }
)


class _NoModels(ModelValidator):
    """Stands in for the R4B validation, to time the profile rules alone."""

    def validate(self, resource_type: str, resource: Mapping[str, Any]) -> None:
        return None


def outbound_resources(patients: int, batch: int) -> list[dict[str, Any]]:
    mappings = load_mappings(ROOT / "mappings")
    caseload = synthetic_caseload(patients)
    per_bundle = max(1, batch // RESOURCES_PER_PATIENT)
    bundles = prepared_bundles(caseload, mappings, per_bundle, _CAPABILITIES)
    return [entry["resource"] for bundle in bundles for entry in bundle["entry"]]


def timed(work: Any) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=900)
    parser.add_argument("--batch", type=int, default=300, help="outbox entries per transaction")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one more repeat")
    args = parser.parse_args()

    holder: list[ProfileSet] = []
    cold = timed(lambda: holder.append(load_profiles()))
    again = min(timed(load_profiles) for _ in range(3))
    profiles = holder[0]
    resources = outbound_resources(args.patients, args.batch)
    count = len(resources)
    kinds = sorted({r["resourceType"] for r in resources})
    print(f"{args.patients} patients, {count} outbound resources ({', '.join(kinds)})")
    print(f"profile load: cold {cold * 1000:.1f} ms, again {again * 1000:.1f} ms")

    def check_all() -> None:
        checker = ConformanceChecker(profiles)
        for resource in resources:
            checker.ensure_conformant(resource)

    def validate_all() -> None:
        models = ModelValidator()
        for resource in resources:
            models.validate(resource["resourceType"], resource)

    def rules_all() -> None:
        checker = ConformanceChecker(profiles)
        checker._models = _NoModels()  # the profile rules alone
        for resource in resources:
            checker.ensure_conformant(resource)

    check_all()  # warm-up: lazy imports of the R4B model modules
    totals = [timed(check_all) for _ in range(args.repeats)]
    models = [timed(validate_all) for _ in range(args.repeats)]
    rules = [timed(rules_all) for _ in range(args.repeats)]
    per = [t / count * 1e6 for t in totals]
    print("check, µs/resource:", ", ".join(f"{p:.1f}" for p in per), f"(best {min(per):.1f})")
    best_models, best_rules = (min(times) / count * 1e6 for times in (models, rules))
    print(
        f"  R4B model validation alone (best) {best_models:.1f}, "
        f"profile rules alone (best) {best_rules:.1f}"
    )

    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(check_all)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
