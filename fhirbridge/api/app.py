"""The REST API: ``create_app(settings)``.

Serve it with any ASGI server after migrating the database, e.g.::

    from fhirbridge.persistence import migrate
    migrate(settings.database_url)
    uvicorn.run(create_app(settings), host="127.0.0.1", port=8000)

Every route but ``/health``, ``/docs``, ``/openapi.json`` and the web app's pages under ``/app``
(signed in with a session cookie: ``fhirbridge.web``) needs a bearer token or an API key
(see ``auth``); every error is a problem document (see ``problems``), unexpected ones included,
without dropping the connection (see ``boundary``); who may see and change what is in
``access``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI

from fhirbridge import wiring
from fhirbridge.api.auth import Authenticator
from fhirbridge.api.boundary import BodyLimit, ErrorBoundary
from fhirbridge.api.busy import install_busy_handler
from fhirbridge.api.deps import AppState, authenticate
from fhirbridge.api.parameters import check_parameters
from fhirbridge.api.problems import install_problem_handlers
from fhirbridge.api.routes import (
    apcm,
    assessments,
    billing,
    care_plans,
    care_team,
    enrollments,
    exports,
    fhir_view,
    health,
    notifications,
    observations,
    patient_care_team,
    patients,
    referrals,
    reports,
    time_entries,
    timers,
    transitional_care,
    worklist,
)
from fhirbridge.api.schemas.problems import document_problems
from fhirbridge.config import Settings
from fhirbridge.fhir import FhirClient
from fhirbridge.persistence.repositories import Clock, utc_now
from fhirbridge.web import mount_web_app

__all__ = ["create_app"]

_AUTHENTICATED = (
    patients.router,
    care_team.router,
    enrollments.router,
    care_plans.router,
    time_entries.router,
    timers.router,
    fhir_view.router,
    reports.router,
    billing.router,
    exports.router,
    referrals.router,
    worklist.router,
    assessments.router,
    observations.router,
    transitional_care.router,
    apcm.router,
    patient_care_team.router,
)


def create_app(
    settings: Settings, *, clock: Clock = utc_now, fhir_client: FhirClient | None = None
) -> FastAPI:
    """An app bound to ``settings.database_url`` (already migrated). ``clock`` decides what
    "now" is for timers and future-time checks. ``fhir_client`` replaces the client bound to
    ``settings.fhir_base_url`` that the notification webhook reads with (its owner closes it)."""
    engine = wiring.engine_for(settings)
    mappings = wiring.mappings(settings)
    # Checked at start-up: the discharge rules, the TCM terms and their holiday calendar.
    wiring.discharge_rules(settings)
    wiring.transitional_care_policy(settings, clock)
    sessions = wiring.session_factory(settings, engine)

    @asynccontextmanager
    async def lifespan(started: FastAPI) -> AsyncIterator[None]:
        async with notifications.notification_client(settings, given=fhir_client) as client:
            started.state.fhir_client = client
            yield
        engine.dispose()

    app = FastAPI(
        title="fhirbridge",
        summary="Care management (enrollments, care plans, tasks, time) synced to FHIR R4",
        version="0.1.0",
        lifespan=lifespan,
        # /docs is the web app's, with Swagger UI served locally; ReDoc would load from a CDN.
        docs_url=None,
        redoc_url=None,
        # Every route, including ones added later: see ``parameters``.
        dependencies=[Depends(check_parameters)],
    )
    app.state.fhirbridge = AppState(
        settings=settings,
        sessions=sessions,
        authenticator=Authenticator(settings, sessions),
        clock=clock,
        tz=ZoneInfo(settings.practice_timezone),
        _mappings=mappings,
    )
    app.state.engine = engine
    install_problem_handlers(app)
    install_busy_handler(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(ErrorBoundary)  # added last: outermost, so nothing escapes it
    app.include_router(health.router)
    # The FHIR server authenticates with the Subscription's shared secret, not a bearer token.
    app.include_router(notifications.router)
    for router in _AUTHENTICATED:
        app.include_router(router, dependencies=[Depends(authenticate)])
    # The pages at /app (signed-in with a session cookie, not a bearer token) and /docs.
    mount_web_app(app)
    # Every problem an operation can answer is declared in /openapi.json (schemas.problems).
    document_problems(app)
    return app
