"""The order a probe runs in: statement, probe patient, every check of every type, one
transaction, and the clean-up that runs whatever happened before it."""

from __future__ import annotations

from functools import partial

from fhirbridge.fhir import (
    Capabilities,
    FhirClient,
    FhirError,
    Gone,
    NotFound,
    RequestInfo,
    Support,
    TransactionBuilder,
    TransportError,
)
from fhirbridge.probe.checks import (
    DELETE_CHECK,
    SEARCH_PARAMS_SHOWN,
    TYPE_CHECKS,
    TypeCheck,
    points_at,
)
from fhirbridge.probe.records import ProbeRecords
from fhirbridge.probe.report import (
    AdvertisedType,
    Check,
    CheckStatus,
    Leftover,
    ProbeReport,
    ServerSummary,
)
from fhirbridge.probe.run import CheckFailed, ProbeOptions, ProbeRun, Subject, explain

__all__ = ["run_probe"]

FHIR_JSON = "application/fhir+json"
SKIPPED_ON_REQUEST = "skipped on request"


async def run_probe(
    client: FhirClient, records: ProbeRecords, options: ProbeOptions
) -> ProbeReport:
    """Run every check; ``ValueError`` before any request for a type there is no record of."""
    unknown = [t for t in options.resource_types or () if t not in records.types]
    if unknown:
        raise ValueError(
            f"no probe record for {', '.join(unknown)}; probed types: {', '.join(records.types)}"
        )
    run = ProbeRun(client, records, options)
    subjects: dict[str, Subject] = {}
    patient: str | None = None
    try:
        if await _capabilities(run):
            patient = await _patient(run)
            for rtype in run.types:
                subjects[rtype] = subject = Subject(rtype)
                await _probe_type(run, subject, patient)
            await _transaction(run, patient)
    finally:
        # Whatever went wrong above, records already created must not be left behind.
        await _clean_up(run, subjects, patient)
    order = {rtype: i for i, rtype in enumerate(run.types, start=1)}
    run.report.checks.sort(key=lambda c: order.get(c.resource_type or "", 0))
    return run.report


# ---------------------------------------------------------------------- server level


async def _capabilities(run: ProbeRun) -> bool:
    """False when the server cannot be reached at all: nothing else is worth trying."""
    try:
        caps = await run.client.capabilities()
    except FhirError as error:
        run.add(
            Check.CAPABILITIES,
            None,
            CheckStatus.FAILED,
            required=True,
            advertised=None,
            detail=explain(error),
            request=error.request.redacted(),
        )
        if isinstance(error, TransportError):
            run.report.unreachable = explain(error)
            return False
        # Without a statement every type is "not listed", so everything is still tried.
        return True
    run.caps = caps
    run.report.server = _summary(caps, run.types)
    version = caps.fhir_version or ""
    formats = ", ".join(sorted(caps.formats)) or "none listed"
    about = f"FHIR {version or '?'}, {caps.software or 'unnamed software'}; formats: {formats}"
    status, detail = CheckStatus.PASSED, about
    if not version.startswith("4.0"):
        status, detail = CheckStatus.FAILED, f"{about}: fhirbridge speaks FHIR R4 (4.0.x)"
    elif caps.formats and not caps.formats & {FHIR_JSON, "json", "application/json"}:
        status, detail = CheckStatus.FAILED, f"{about}: no JSON format advertised"
    run.add(Check.CAPABILITIES, None, status, required=True, advertised=None, detail=detail)
    return True


async def _patient(run: ProbeRun) -> str | None:
    given = run.options.patient
    if given is not None:
        rtype, _, rid = given.partition("/")

        async def read_given() -> str:
            await run.client.read(rtype, rid)
            return f"using {given}"

        ok = await run.attempt(
            Check.PATIENT,
            None,
            read_given,
            required=True,
            advertised=run.caps.supports("Patient", "read"),
        )
        return given if ok else None
    created: list[str] = []

    async def create_patient() -> str:
        record = run.records.patient(run_id=run.options.run_id)
        result = await run.client.create(record.resource)
        if result.id is None:
            raise CheckFailed("the server returned no id for the new Patient")
        run.track("Patient", result.id)
        created.append(f"Patient/{result.id}")
        return f"created Patient/{result.id}"

    ok = await run.attempt(
        Check.PATIENT,
        None,
        create_patient,
        required=True,
        advertised=run.caps.supports("Patient", "create"),
    )
    return created[0] if ok else None


async def _transaction(run: ProbeRun, patient: str | None) -> None:
    advertised = Support.of(run.caps.transaction) if run.caps.raw else Support.UNKNOWN
    # fhirbridge sends entries one by one where transactions are not advertised: then a
    # failing transaction is a finding, not a blocker.
    required = advertised is not Support.UNSUPPORTED
    reason = _cannot_run(run, Check.TRANSACTION, None if patient else "needs the probe patient")
    if reason is not None:
        run.add(
            Check.TRANSACTION,
            None,
            CheckStatus.SKIPPED,
            required=required,
            advertised=advertised,
            detail=reason,
        )
        return
    assert patient is not None

    async def transaction() -> str:
        builder = TransactionBuilder()
        goal = run.record("Goal", "transaction", patient)
        plan = run.record("CarePlan", "transaction", patient, bound={"goal": builder.ref("goal")})
        builder.create(goal.resource, key="goal")
        builder.create(plan.resource, key="plan")
        response = await run.client.transaction(builder.build())
        results = builder.parse_response(response, request=RequestInfo("POST", run.client.base_url))
        for entry in results:
            run.track(entry.type, entry.id)
        goal_id, plan_id = results.by_key("goal").id, results.by_key("plan").id
        if goal_id is None or plan_id is None:
            raise CheckFailed("the transaction response names no ids for its entries")
        stored = (await run.client.read("CarePlan", plan_id)).resource or {}
        shown = [g.get("reference", "") for g in stored.get("goal") or []]
        if not any(points_at(ref, "Goal", goal_id) for ref in shown):
            raise CheckFailed(
                f"CarePlan.goal is {shown or 'missing'}, not Goal/{goal_id}: "
                "the urn:uuid reference was not resolved"
            )
        return f"CarePlan/{plan_id} -> Goal/{goal_id}"

    await run.attempt(
        Check.TRANSACTION, None, transaction, required=required, advertised=advertised
    )


# ---------------------------------------------------------------------- one resource type


async def _probe_type(run: ProbeRun, subject: Subject, patient: str | None) -> None:
    for step in TYPE_CHECKS:
        await _step(run, step, subject, patient)


async def _step(
    run: ProbeRun,
    step: TypeCheck,
    subject: Subject,
    patient: str | None,
    *,
    held: str | None = None,
) -> bool | None:
    """Run one check of ``subject``'s type, or record why it cannot run (``held``: a reason
    of the caller's). Whether it worked; None when it was skipped."""
    rtype = subject.type
    required = step.required(run.caps, rtype)
    advertised = step.advertised(run.caps, rtype)
    reason = _cannot_run(
        run, step.check, "needs the probe patient" if patient is None else step.needs(subject)
    )
    if reason is None:
        reason = held
    if reason is not None:
        run.add(
            step.check,
            rtype,
            CheckStatus.SKIPPED,
            required=required,
            advertised=advertised,
            detail=reason,
        )
        return None
    assert patient is not None
    action = partial(step.action, run, subject, patient)
    return await run.attempt(step.check, rtype, action, required=required, advertised=advertised)


def _cannot_run(run: ProbeRun, check: Check, needs: str | None) -> str | None:
    if check in run.options.skip:
        return SKIPPED_ON_REQUEST
    return needs


# ---------------------------------------------------------------------- cleaning up


async def _clean_up(run: ProbeRun, subjects: dict[str, Subject], patient: str | None) -> None:
    """Delete what the probe created, newest first: later records reference earlier ones, and
    the probe patient goes last. Deleting a type's main record is that type's delete check."""
    held = "kept on the server (--keep)" if run.options.keep else None
    mains = {(s.type, s.id): s for s in subjects.values() if s.id is not None}
    for subject in subjects.values():
        if subject.id is None or held is not None:
            await _step(run, DELETE_CHECK, subject, patient, held=held)
    if run.options.keep:
        for rtype, rid in run.created:
            run.report.leftovers.append(Leftover(f"{rtype}/{rid}", "kept (--keep)"))
        return
    for rtype, rid in reversed(run.created):
        main = mains.get((rtype, rid))
        deleted = None if main is None else await _step(run, DELETE_CHECK, main, patient)
        if deleted is None:  # not a main record, or its check was skipped on request
            await _delete_quietly(run, rtype, rid)
        elif not deleted:
            run.report.leftovers.append(Leftover(f"{rtype}/{rid}", "delete failed"))


async def _delete_quietly(run: ProbeRun, rtype: str, rid: str) -> None:
    try:
        await run.client.delete(rtype, rid)
    except (NotFound, Gone):
        return
    except FhirError as error:
        run.report.leftovers.append(Leftover(f"{rtype}/{rid}", explain(error)))


def _summary(caps: Capabilities, types: tuple[str, ...]) -> ServerSummary:
    advertised = []
    for rtype in types:
        res = caps.resource(rtype)
        advertised.append(
            AdvertisedType(
                type=rtype,
                listed=res is not None,
                interactions=tuple(sorted(res.interactions)) if res else (),
                versioning=res.versioning if res else None,
                conditional_create=bool(res and res.conditional_create),
                conditional_update=bool(res and res.conditional_update),
                search_params={
                    p: caps.supports_search_param(rtype, p) for p in SEARCH_PARAMS_SHOWN
                },
            )
        )
    return ServerSummary(
        fhir_version=caps.fhir_version,
        software=caps.software,
        formats=tuple(sorted(caps.formats)),
        transaction=caps.transaction,
        batch=caps.batch,
        types=tuple(advertised),
    )
