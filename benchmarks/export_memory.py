"""Memory of ``fhirbridge export``: peak RSS stays flat as the caseload grows.

    .venv/bin/python benchmarks/export_memory.py --sizes 2000 10000

For each size, a SQLite database gets that many synthetic patients (six records each, see
``fhirbridge.synthetic``); a child process then exports every one of them as NDJSON (with the
transaction Bundle) and prints its own peak RSS (``VmHWM``), so the
figure covers the export alone, not building the database.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhirbridge.config import Settings  # noqa: E402
from fhirbridge.mapping.loader import load_mappings  # noqa: E402
from fhirbridge.persistence import (  # noqa: E402
    Store,
    make_engine,
    make_session_factory,
    migrate,
    unit_of_work,
)
from fhirbridge.synthetic import synthetic_caseload, synthetic_patients  # noqa: E402

BATCH = 1000


def build(url: str, patients: int) -> None:
    migrate(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine, sync_plan=load_mappings(Settings().mappings_dir).plan)
    with unit_of_work(sessions) as session:
        for member in synthetic_caseload(0).members:
            Store(session).save(member)
    for start in range(0, patients, BATCH):
        with unit_of_work(sessions) as session:
            store = Store(session)
            for records in synthetic_patients(min(BATCH, patients - start), start=start):
                for record in records:
                    store.save(record)  # type: ignore[arg-type]
    engine.dispose()


def child(url: str, out: Path) -> None:
    from fhirbridge.bulk import export_own_data

    settings = Settings()
    engine = make_engine(url)
    started = time.perf_counter()
    mappings = load_mappings(settings.mappings_dir)
    report = export_own_data(
        sessions=make_session_factory(engine, sync_plan=mappings.plan),
        mappings=mappings,
        identifier_system=settings.identifier_system,
        folder=out,
        bundle=True,
    )
    elapsed = time.perf_counter() - started
    engine.dispose()
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and exec from the parent.
    with open("/proc/self/status") as status:
        peak_kb = int(next(line.split()[1] for line in status if line.startswith("VmHWM")))
    print(
        f"patients={report.patients} resources={sum(report.counts.values())}"
        f" rejected={len(report.rejected)} seconds={elapsed:.1f} peak_rss_mb={peak_kb / 1024:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--child", nargs=2, metavar=("URL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    with tempfile.TemporaryDirectory(prefix="fhirbridge-export-bench-") as work:
        for size in args.sizes:
            url = f"sqlite:///{Path(work) / f'caseload-{size}.db'}"
            build(url, size)
            out = Path(work) / f"export-{size}"
            result = subprocess.run(
                [sys.executable, __file__, "--child", url, str(out)],
                check=True,
                capture_output=True,
                text=True,
            )
            print(f"{size:>6} patients: {result.stdout.strip()}")


if __name__ == "__main__":
    main()
