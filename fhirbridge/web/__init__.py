"""The web app for care managers, served at /app (server-rendered pages, sign-in), and the
offline OpenAPI page at /docs.

``mount_web_app(app)`` adds both to the REST API's app. The pages use the API's own services
and access rules (see ``pages``); their assets, htmx and Swagger UI included, are files of this
package (``static``, pinned in ``static/VENDORED.md``): nothing is loaded from another host.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "mount_web_app"]

STATIC_DIR = Path(__file__).parent / "static"


def mount_web_app(app: FastAPI) -> None:
    """Add the sign-in (``signin``) and the pages under /app, their static files under
    /app/static, and /docs (create the app with ``docs_url=None``)."""
    # Imported here: the page modules import the API's routes, and fhirbridge.api.app imports
    # this package.
    from fhirbridge.web.docs import router as docs
    from fhirbridge.web.month_end import router as month_end
    from fhirbridge.web.patients import router as patients
    from fhirbridge.web.referrals import router as referrals
    from fhirbridge.web.signin import router as signin
    from fhirbridge.web.sync_status import router as sync_status
    from fhirbridge.web.timers import router as timers
    from fhirbridge.web.worklist import router as worklist

    app.mount("/app/static", StaticFiles(directory=STATIC_DIR), name="web-static")
    for router in (docs, signin, worklist, patients, timers, referrals, month_end, sync_status):
        app.include_router(router)
