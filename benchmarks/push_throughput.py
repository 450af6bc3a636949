"""Push throughput: fhirbridge's sync worker vs the server's raw limit vs a naive client.

    .venv/bin/python benchmarks/push_throughput.py --patients 10000

Each contender gets a fresh local FHIR server (sekmet) on loopback:

- raw: a bare httpx loop posting the transaction Bundles fhirbridge would send, prepared in
  advance (the server's own limit for this workload);
- fhirbridge: `fhirbridge sync push --once` in a child process, from a database holding the
  caseload with its outbox: claim, map, check profiles, bundle, push, record links;
- naive: one create request per resource, sequential (measured on a sample of patients);
- strict, unlimited / strict, 8 per transaction: `fhirbridge sync push --once` again, through the
  strict test proxy (tests/servers/strict.py: opaque version ids, no referential checks here)
  without a size limit, then refusing transactions of more than 8 entries; the worker learns
  the limit from the first refusal.

Prints resources/s for each, the ratios, and the worker's peak RSS (of the child process).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhirbridge.caseload import Caseload  # noqa: E402
from fhirbridge.conformance import ensure_conformant  # noqa: E402
from fhirbridge.fhir import Capabilities, Support, TransactionBuilder  # noqa: E402
from fhirbridge.localserver import LocalFhirServer  # noqa: E402
from fhirbridge.mapping.concepts import concept_of  # noqa: E402
from fhirbridge.mapping.context import MappingContext  # noqa: E402
from fhirbridge.mapping.engine import ResourceMapping  # noqa: E402
from fhirbridge.mapping.loader import Mappings, load_mappings  # noqa: E402
from fhirbridge.mapping.references import StaticReferences  # noqa: E402
from fhirbridge.persistence import (  # noqa: E402
    Store,
    make_engine,
    make_session_factory,
    migrate,
    unit_of_work,
)
from fhirbridge.services.caseload import store_caseload  # noqa: E402
from fhirbridge.synthetic import RESOURCES_PER_PATIENT, synthetic_caseload  # noqa: E402
from tests.servers.strict import Quirks, start_strict_server  # noqa: E402

SYSTEM = "urn:fhirbridge:bench"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


# -- the bundles fhirbridge would send, built in advance for the raw and naive contenders ------


def _client_assigned_id(key: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{SYSTEM}|{key}"))


class _BundleReferences(StaticReferences):
    """Records of the bundle are referenced through the builder's placeholders."""

    def __init__(
        self,
        base: StaticReferences,
        builder: TransactionBuilder,
        keys: Mapping[tuple[str, str], str],
        literal: Mapping[str, str],
    ) -> None:
        super().__init__(base.patients, base.members, base.server_ids, primary=base.primary)
        self._builder = builder
        self._keys = keys
        self._literal = literal

    def reference(self, concept: str, local_id: str) -> str:
        key = self._keys.get((concept, local_id))
        if key is None:
            return super().reference(concept, local_id)
        return self._literal.get(key) or self._builder.ref(key)


def _bundle(
    records: Iterable[tuple[str, Any]],
    mappings: Mappings,
    refs: StaticReferences,
    capabilities: Capabilities,
) -> dict[str, Any]:
    """One transaction, as the worker builds it: conditional creates on the business
    identifier, or PUTs to an id derived from it where the server cannot search identifiers."""
    plan = mappings.plan
    items: list[tuple[str, Any, ResourceMapping, str]] = sorted(
        (
            (
                concept,
                record,
                mapping,
                f"{mapping.resource}/{mapping.identifier_prefix}/{record.id}",
            )
            for concept, record in records
            for mapping in mappings.for_concept(concept)
        ),
        key=lambda item: plan.rank(item[0]),
    )
    builder = TransactionBuilder()
    primary = {
        (concept, record.id): key
        for concept, record, mapping, key in items
        if plan.is_primary(concept, mapping.resource)
    }
    literal = {
        key: f"{mapping.resource}/{_client_assigned_id(key)}"
        for _, _, mapping, key in items
        if capabilities.supports_search_param(mapping.resource, "identifier")
        is not Support.SUPPORTED
    }
    ctx = MappingContext(
        SYSTEM, _BundleReferences(refs, builder, primary, literal), mappings.terminology
    )
    for _, record, mapping, key in items:
        resource = mapping.to_fhir(record, ctx)
        ensure_conformant(resource)
        if key in literal:
            builder.update({**resource, "id": literal[key].split("/", 1)[1]}, key=key)
        else:
            value = f"{SYSTEM}|{mapping.identifier_prefix}/{record.id}"
            builder.create(resource, key=key, if_none_exist={"identifier": value})
    return builder.build()


def prepared_bundles(
    caseload: Caseload, mappings: Mappings, per_bundle: int, capabilities: Capabilities
) -> list[dict[str, Any]]:
    """The caseload's transaction Bundles, ``per_bundle`` patients each."""
    refs = StaticReferences.of(
        caseload.patients, caseload.members, primary=mappings.plan.primary_resources
    )
    records = [(concept_of(r), r) for r in caseload.care_records()]
    by_patient: dict[str, list[tuple[str, Any]]] = {}
    for concept, record in records:
        by_patient.setdefault(record.patient_id, []).append((concept, record))
    patients = list(by_patient)
    bundles = []
    for i in range(0, len(patients), per_bundle):
        chunk = [item for p in patients[i : i + per_bundle] for item in by_patient[p]]
        bundles.append(_bundle(chunk, mappings, refs, capabilities))
    return bundles


def raw(base_url: str, bundles: list[dict[str, Any]]) -> float:
    with httpx.Client(headers=FHIR_JSON, timeout=300) as client:
        started = time.perf_counter()
        for bundle in bundles:
            client.post(base_url, json=bundle).raise_for_status()
        return time.perf_counter() - started


def naive(base_url: str, bundles: list[dict[str, Any]]) -> tuple[int, float]:
    resources = [e["resource"] for b in bundles for e in b["entry"]]
    with httpx.Client(headers=FHIR_JSON, timeout=300) as client:
        started = time.perf_counter()
        for item in resources:
            # A naive client: one POST per resource, references left as they are.
            client.post(f"{base_url}/{item['resourceType']}", json=item).raise_for_status()
        return len(resources), time.perf_counter() - started


# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across fork and exec, so the child
# would report the benchmark's own (caseload-sized) peak.
_CHILD = """
import sys
from fhirbridge.cli import app
try:
    app(sys.argv[1:])
finally:
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM"))
    print(f"PEAK_RSS_KIB {peak}", file=sys.stderr)
"""


def fhirbridge_push(base_url: str, db_url: str, batch: int) -> tuple[float, float, float]:
    """Run ``fhirbridge sync push --once`` in a child; its own peak RSS, not the servers'."""
    env = {**os.environ, "FHIRBRIDGE_IDENTIFIER_SYSTEM": SYSTEM}
    command = ["sync", "push", "--once", "--database-url", db_url, "--fhir-url", base_url]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *command, "--batch-size", str(batch)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    peak = next(line for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KIB"))
    # The command's summary ends "... in 12.3s" (rich may wrap it).
    pushing = float(re.findall(r"\bin\s+([0-9.]+)s", done.stdout)[-1])
    return elapsed, pushing, int(peak.split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=300, help="outbox entries per transaction")
    parser.add_argument("--naive-patients", type=int, default=500)
    args = parser.parse_args()
    mappings = load_mappings(ROOT / "mappings")
    caseload = synthetic_caseload(args.patients)
    resources = args.patients * RESOURCES_PER_PATIENT
    per_bundle = max(1, args.batch // RESOURCES_PER_PATIENT)
    print(f"{args.patients} patients, {resources} resources, {args.batch} per transaction")

    with tempfile.TemporaryDirectory(prefix="fhirbridge-bench-") as tmp:
        work = Path(tmp)
        db_url = f"sqlite:///{work / 'bench.db'}"
        migrate(db_url)
        engine = make_engine(db_url)
        sessions = make_session_factory(engine, sync_plan=mappings.plan)
        started = time.perf_counter()
        # Records arrive over days in real life; one unit of work per 500 patients here.
        for first in range(0, args.patients, 500):
            chunk = synthetic_caseload(min(500, args.patients - first), start=first)
            with unit_of_work(sessions) as session:
                store_caseload(store=Store(session), caseload=chunk)
        engine.dispose()
        print(f"stored caseload + outbox in {time.perf_counter() - started:.1f}s")
        # Every fhirbridge run starts from the same outbox (and no learned server profile).
        copies = {name: work / f"{name}.db" for name in ("strict", "strict8")}
        for copy in copies.values():
            shutil.copyfile(work / "bench.db", copy)
        with LocalFhirServer(workdir=work / "raw") as server:
            metadata = httpx.get(f"{server.base_url}/metadata").json()
            capabilities = Capabilities.from_statement(metadata)
            bundles = prepared_bundles(caseload, mappings, per_bundle, capabilities)
            raw_s = raw(server.base_url, bundles)
        with LocalFhirServer(workdir=work / "fb") as server:
            fb_s, pushing_s, peak_mib = fhirbridge_push(server.base_url, db_url, args.batch)
        others = synthetic_caseload(args.naive_patients, start=args.patients)
        sample = prepared_bundles(others, mappings, per_bundle, capabilities)
        with LocalFhirServer(workdir=work / "naive") as server:
            naive_n, naive_s = naive(server.base_url, sample)
        strict: dict[str, float] = {}
        for name, limit in (("strict", None), ("strict8", 8)):
            quirks = Quirks(
                max_transaction_entries=limit,
                max_transaction_updates=None,
                referential_integrity=False,
            )
            proxy = start_strict_server(work / f"sekmet-{name}", quirks)
            try:
                copy_url = f"sqlite:///{copies[name]}"
                _, strict[name], _ = fhirbridge_push(proxy.base_url, copy_url, args.batch)
            finally:
                proxy.stop()

    raw_rate, fb_rate, naive_rate = resources / raw_s, resources / fb_s, naive_n / naive_s
    print(f"raw httpx transactions : {raw_rate:8.0f} resources/s ({raw_s:.1f}s)")
    print(f"fhirbridge sync push   : {fb_rate:8.0f} resources/s ({fb_s:.1f}s, incl. start-up)")
    print(f"  of which pushing     : {resources / pushing_s:8.0f} resources/s ({pushing_s:.1f}s)")
    print(f"naive one-by-one       : {naive_rate:8.0f} resources/s ({naive_n} resources sampled)")
    print(f"fhirbridge / raw       : {fb_rate / raw_rate:8.0%}   (target >= 80%)")
    print(f"  pushing alone / raw  : {resources / pushing_s / raw_rate:8.0%}")
    print(f"fhirbridge / naive     : {fb_rate / naive_rate:8.1f}x  (target >= 5x)")
    print(f"worker peak RSS        : {peak_mib:8.0f} MiB (target < 300)")
    unlimited, limited = resources / strict["strict"], resources / strict["strict8"]
    print(f"strict proxy, no limit : {unlimited:8.0f} resources/s (pushing)")
    print(f"strict proxy, 8 / tx   : {limited:8.0f} resources/s (pushing; limit learned)")
    print(f"  8 per tx / no limit  : {limited / unlimited:8.0%}")


if __name__ == "__main__":
    main()
