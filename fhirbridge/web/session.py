"""Who is signed in to the web app: a signed session cookie, and CSRF protection for forms.

The session is a JWT (HS256, PyJWT) in the ``fhirbridge_session`` cookie: HttpOnly,
SameSite=Lax, Secure when the request came over https, expiring after
``web_session_max_age_seconds``. It carries the principal (the same roles, team and staff id
the API's bearer tokens grant), a CSRF token, and the patient an EHR launch selected.

The signing secret is ``FHIRBRIDGE_WEB_SESSION_SECRET``. When it is unset a random secret is
made for this process: fine for development and tests, but sessions then end when the process
restarts and are not shared between ``serve --workers N`` processes; set it in production.

Every form carries the session's CSRF token in a ``csrf_token`` field (htmx requests send it in
the ``X-CSRF-Token`` header instead); ``check_csrf`` compares it in constant time. SameSite=Lax
already keeps the cookie off cross-site POSTs; the token also covers sibling subdomains.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

import jwt
from fastapi import Depends, HTTPException, Request, Response

from fhirbridge.api.auth import Principal, Role
from fhirbridge.config import Settings

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "CheckedSession",
    "SignedIn",
    "WebSession",
    "check_csrf",
    "checked_web_session",
    "clear_session_cookie",
    "decode_session",
    "encode_session",
    "issue_session_cookie",
    "new_session",
    "safe_next",
    "session_secret",
    "set_session_cookie",
    "sign_in_url",
    "web_session",
]

SESSION_COOKIE = "fhirbridge_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SIGN_IN_PATH = "/app/sign-in"
_ALGORITHM = "HS256"
# Session tokens name their purpose, so no other token signed with the same secret passes.
_AUDIENCE = "fhirbridge-web-session"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Used when no secret is configured: sessions then last as long as this process (see above).
_PROCESS_SECRET = secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in user of the web app."""

    principal: Principal
    csrf_token: str
    # Our patient id an EHR launch opened the app for (None without a launch).
    patient_context: str | None = None


def session_secret(settings: Settings) -> str:
    configured = settings.web_session_secret
    return _PROCESS_SECRET if configured is None else configured.get_secret_value()


def encode_session(settings: Settings, session: WebSession) -> str:
    now = int(time.time())
    principal = session.principal
    claims: dict[str, Any] = {
        "aud": _AUDIENCE,
        "iat": now,
        "exp": now + settings.web_session_max_age_seconds,
        "sub": principal.id,
        "roles": sorted(role.value for role in principal.roles),
        "team": principal.team,
        "staff_id": principal.staff_id,
        "csrf": session.csrf_token,
        "patient": session.patient_context,
    }
    return jwt.encode(claims, session_secret(settings), algorithm=_ALGORITHM)


def decode_session(settings: Settings, value: str) -> WebSession | None:
    """The session a cookie value holds; None when it is forged, expired or malformed."""
    try:
        claims: dict[str, Any] = jwt.decode(
            value,
            session_secret(settings),
            algorithms=[_ALGORITHM],
            audience=_AUDIENCE,
            options={"require": ["exp", "sub", "aud", "csrf"]},
        )
    except jwt.PyJWTError:
        return None
    known = {role.value for role in Role}
    roles = claims.get("roles")
    principal = Principal(
        id=str(claims["sub"]),
        roles=frozenset(Role(r) for r in roles if r in known)
        if isinstance(roles, list)
        else frozenset(),
        team=_optional_str(claims.get("team")),
        staff_id=_optional_str(claims.get("staff_id")),
    )
    return WebSession(
        principal=principal,
        csrf_token=str(claims["csrf"]),
        patient_context=_optional_str(claims.get("patient")),
    )


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def new_session(principal: Principal, *, patient_context: str | None = None) -> WebSession:
    return WebSession(
        principal=principal,
        csrf_token=secrets.token_urlsafe(32),
        patient_context=patient_context,
    )


def set_session_cookie(
    response: Response, request: Request, settings: Settings, session: WebSession
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        encode_session(settings, session),
        max_age=settings.web_session_max_age_seconds,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def issue_session_cookie(
    settings: Settings, principal: Principal, *, patient_context: str | None = None
) -> tuple[str, str]:
    """A valid session cookie (name, value) for ``principal``, for tests and tools that sign
    in without a browser. Its CSRF token is ``decode_session(settings, value).csrf_token``."""
    session = new_session(principal, patient_context=patient_context)
    return SESSION_COOKIE, encode_session(settings, session)


def safe_next(target: str | None) -> str:
    """``target`` when it is a path inside the app, else the app's start page: the sign-in's
    ``next`` parameter must never send the user to another site."""
    if (
        target
        and (target == "/app" or target.startswith(("/app/", "/app?")))
        and "\\" not in target
        and all(ord(c) > 0x1F for c in target)
    ):
        return target
    return "/app"


def sign_in_url(next_path: str) -> str:
    return f"{SIGN_IN_PATH}?next={quote(safe_next(next_path), safe='/')}"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.fhirbridge.settings
    return settings


def web_session(request: Request) -> WebSession:
    """The signed-in user; without a valid session, a redirect to the sign-in page (a 303 for
    pages, a 401 with ``HX-Redirect`` for htmx requests, which would follow a 303 silently)."""
    value = request.cookies.get(SESSION_COOKIE)
    session = None if value is None else decode_session(_settings(request), value)
    if session is not None:
        return session
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = sign_in_url(target)
    if request.headers.get("HX-Request") == "true":
        raise HTTPException(401, "sign in first", headers={"HX-Redirect": location})
    raise HTTPException(303, "sign in first", headers={"Location": location})


async def check_csrf(request: Request, session: WebSession) -> None:
    """Refuse (403) a state-changing request whose CSRF token is missing or wrong."""
    if request.method in _SAFE_METHODS:
        return
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        presented = field if isinstance(field, str) else None
    if presented is None or not hmac.compare_digest(
        presented.encode(), session.csrf_token.encode()
    ):
        raise HTTPException(403, "the form is out of date or was not sent from this app")


SignedIn = Annotated[WebSession, Depends(web_session)]


async def checked_web_session(request: Request, session: SignedIn) -> WebSession:
    """The signed-in user, with the CSRF token of a state-changing request checked."""
    await check_csrf(request, session)
    return session


CheckedSession = Annotated[WebSession, Depends(checked_web_session)]
