"""Push worker CPU per resource: `fhirbridge sync push --once`, measured inside its process.

    .venv/bin/python benchmarks/push_worker_cpu.py --patients 900 --runs 3 --sample

Client and FHIR server share the machine, so the worker's own CPU per resource is what bounds
its rate against the server's raw limit (benchmarks/push_throughput.py). Wall-clock time on a
shared machine is noise; the CPU time of the worker's process is not (the server, sekmet, is
another process).

The caseload and its outbox are stored once; each run copies that database, starts a fresh
local FHIR server and a fresh Python process that imports the command line (timed on its own:
start-up imports), then runs `sync push --once` in-process and reports its CPU time
(``time.process_time``) per resource, with the garbage collector's share. ``--sample`` adds a
run whose CPU time is broken down by sampling the Python stack every millisecond of CPU;
``--profile-out`` a run under cProfile (call counts), written for pstats.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's fhirbridge, in the child process too
SYSTEM = "urn:fhirbridge:bench"
RESOURCES_PER_PATIENT = 6  # fhirbridge.synthetic's, checked in seed()


def seed(db_path: Path, patients: int) -> None:
    """The caseload and its outbox, one unit of work per 500 patients (as push_throughput)."""
    from fhirbridge import synthetic
    from fhirbridge.mapping.loader import load_mappings
    from fhirbridge.persistence import (
        Store,
        make_engine,
        make_session_factory,
        migrate,
        unit_of_work,
    )
    from fhirbridge.services.caseload import store_caseload

    assert synthetic.RESOURCES_PER_PATIENT == RESOURCES_PER_PATIENT
    db_url = f"sqlite:///{db_path}"
    migrate(db_url)
    engine = make_engine(db_url)
    sessions = make_session_factory(engine, sync_plan=load_mappings(ROOT / "mappings").plan)
    for first in range(0, patients, 500):
        chunk = synthetic.synthetic_caseload(min(500, patients - first), start=first)
        with unit_of_work(sessions) as session:
            store_caseload(store=Store(session), caseload=chunk)
    engine.dispose()


class GcClock:
    """CPU time spent in the garbage collector, by generation."""

    def __init__(self) -> None:
        self.spent = [0.0, 0.0, 0.0]
        self.runs = [0, 0, 0]
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.spent[info["generation"]] += time.process_time() - self._started
            self.runs[info["generation"]] += 1

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._callback)

    def report(self, resources: int) -> str:
        per = 1000 / resources
        return ", ".join(
            f"gen{g} {n}x {s * per:.3f} ms/resource"
            for g, (n, s) in enumerate(zip(self.runs, self.spent, strict=True))
        )


class CpuSampler:
    """Where the CPU time goes: the Python stack every millisecond of this process's CPU time
    (SIGPROF), so waiting for the server and other processes on a loaded machine do not count
    and, unlike cProfile, the cost of measuring is not spread over every call."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.stacks: Counter[tuple[str, ...]] = Counter()  # CPU microseconds by stack
        self._last = 0.0

    def _sample(self, _signum: int, frame: FrameType | None) -> None:
        # Signals that fall due during one long C call are delivered once, after it: each
        # sample weighs the CPU time since the last one, not one interval.
        now = time.process_time()
        spent, self._last = now - self._last, now
        stack = []
        while frame is not None:
            code = frame.f_code
            stack.append(f"{code.co_filename}:{code.co_name}")
            frame = frame.f_back
        self.stacks[tuple(stack)] += round(spent * 1e6)

    def __enter__(self) -> CpuSampler:
        self._last = time.process_time()
        signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)
        return self

    def __exit__(self, *_: object) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, signal.SIG_DFL)

    def report(self, resources: int, top: int) -> None:
        total = sum(self.stacks.values())
        per = 1e-3 / resources  # microseconds -> ms per resource

        def inclusive(pattern: str) -> int:
            return sum(n for stack, n in self.stacks.items() if any(pattern in f for f in stack))

        print(f"sampled: {total / 1e6:.2f}s CPU = {total * per:.3f} ms/resource")
        for label, pattern in (
            ("conformance (ensure_conformant)", "conformance/checker.py:ensure_conformant"),
            ("mapping files loaded", "mapping/loader.py:load_mappings"),
            ("mapping (to_fhir)", "mapping/engine.py:to_fhir"),
            ("content_hash", "sync/links.py:content_hash"),
            ("request body encoding", "fhir/client.py:_encode"),
            ("response decoding", "fhir/client.py:_decode"),
            ("bundle build", "fhir/bundle.py:build"),
            ("response parsing", "fhir/bundle.py:parse_response"),
            ("prepare", "sync/prepare.py:prepare"),
            ("  prepare: records read", "sync/prepare.py:_records"),
            ("record (pushed)", "sync/record.py:pushed"),
            ("claim", "sync/claim.py:claim"),
            ("adopt existing", "sync/worker.py:_adopt_existing"),
            ("SQLAlchemy", "site-packages/sqlalchemy/"),
            ("httpx/httpcore", "site-packages/http"),
        ):
            n = inclusive(pattern)
            print(f"  {label:<34} {n * per:7.3f} ms/resource ({n / total:4.0%})")
        own: Counter[str] = Counter()
        for stack, n in self.stacks.items():
            own[stack[0]] += n
        print("own time (innermost Python function):")
        for where, n in own.most_common(top):
            print(f"  {n * per:7.3f} ms/resource {n / total:4.0%}  {where}")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(args: argparse.Namespace) -> None:
    """One `sync push --once` in this (fresh) process; prints what it cost."""
    resources = args.patients * RESOURCES_PER_PATIENT
    started = time.process_time()
    from fhirbridge.cli import app

    imports = time.process_time() - started
    argv = ["sync", "push", "--once", "--database-url", args.child_db]
    argv += ["--fhir-url", args.child_url, "--batch-size", str(args.batch)]
    gc_clock = GcClock()
    sampler = CpuSampler() if args.child_mode == "sample" else None
    profiler = cProfile.Profile() if args.child_mode == "profile" else None
    wall = time.perf_counter()
    cpu = time.process_time()
    with gc_clock:
        if sampler is not None:
            sampler.__enter__()
        if profiler is not None:
            profiler.enable()
        try:
            app(argv, standalone_mode=False)
        finally:
            if profiler is not None:
                profiler.disable()
            if sampler is not None:
                sampler.__exit__()
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    print(
        f"CPU {cpu * 1000 / resources:.3f} ms/resource ({cpu:.2f}s CPU, {wall:.2f}s wall; "
        f"start-up imports {imports:.2f}s CPU besides); garbage collector: "
        f"{gc_clock.report(resources)}; peak RSS {_peak_rss_mib():.0f} MiB"
    )
    print(f"RESULT {cpu}")
    if sampler is not None:
        sampler.report(resources, args.top)
        if args.stacks_out is not None:
            args.stacks_out.write_text(
                "\n".join(f"{n} {';'.join(reversed(stack))}" for stack, n in sampler.stacks.items())
            )
    if profiler is not None:
        profiler.dump_stats(args.profile_out)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)


def push_once(work: Path, seeded: Path, run: int, args: argparse.Namespace, mode: str) -> float:
    """CPU seconds of one `sync push --once` of the seeded outbox in a fresh process."""
    from fhirbridge.localserver import LocalFhirServer

    db = work / f"run{run}.db"
    shutil.copyfile(seeded, db)
    with LocalFhirServer(workdir=work / f"server{run}") as server:
        command = [sys.executable, __file__, "--patients", str(args.patients)]
        command += ["--batch", str(args.batch), "--top", str(args.top)]
        command += ["--child-db", f"sqlite:///{db}", "--child-url", server.base_url]
        command += ["--child-mode", mode]
        if args.profile_out is not None:
            command += ["--profile-out", str(args.profile_out)]
        if args.stacks_out is not None:
            command += ["--stacks-out", str(args.stacks_out)]
        env = {**os.environ, "FHIRBRIDGE_IDENTIFIER_SYSTEM": SYSTEM}
        done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    summary = " ".join(done.stdout.split())  # the command's own line, as rich wrapped it
    if "dead letters 0, conflicts 0" not in summary or "retried 0" not in summary:
        raise SystemExit(f"the push did not go through cleanly:\n{done.stdout}\n{done.stderr}")
    # What the child measured, from its "CPU ..." line on (the command's summary left out).
    report = done.stdout[done.stdout.index("CPU ") :]
    print("\n".join(line for line in report.splitlines() if not line.startswith("RESULT ")))
    return float(done.stdout.split("RESULT ", 1)[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=900)
    parser.add_argument("--batch", type=int, default=300, help="outbox entries per transaction")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--sample", action="store_true", help="one more run, sampling stacks every ms of CPU"
    )
    parser.add_argument("--profile-out", type=Path, help="one more run under cProfile, kept here")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--stacks-out", type=Path, help="with --sample: the sampled stacks (folded, microseconds)"
    )
    parser.add_argument("--child-db", help=argparse.SUPPRESS)
    parser.add_argument("--child-url", help=argparse.SUPPRESS)
    parser.add_argument("--child-mode", default="plain", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_db is not None:
        child(args)
        return
    resources = args.patients * RESOURCES_PER_PATIENT
    with tempfile.TemporaryDirectory(prefix="fhirbridge-cpu-") as tmp:
        work = Path(tmp)
        seeded = work / "seeded.db"
        seed(seeded, args.patients)
        print(f"{args.patients} patients, {resources} resources, {args.batch} per transaction")
        cpus = []
        for run in range(args.runs):
            print(f"run {run + 1}: ", end="", flush=True)
            cpus.append(push_once(work, seeded, run, args, "plain"))
        best = min(cpus)
        print(f"best of {args.runs}: {best * 1000 / resources:.3f} ms CPU/resource ({best:.2f}s)")
        if args.sample:
            print("sampled run: ", end="", flush=True)
            push_once(work, seeded, args.runs, args, "sample")
        if args.profile_out is not None:
            print("profiled run: ", end="", flush=True)
            push_once(work, seeded, args.runs + 1, args, "profile")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
