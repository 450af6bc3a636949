"""Signing in to the web app: the installation's OpenID Connect provider, SMART App Launch from
an EHR, and a development sign-in for ``fhirbridge demo --serve``.

Both real ways use the authorization code with PKCE (S256). What the browser must bring back
(``state``, the ``nonce``, the PKCE verifier, where to go next) waits in a short-lived signed,
HttpOnly cookie; the callback checks ``state`` against it, redeems the code and verifies the ID
token with PyJWT against the provider's published keys (signature, ``iss``, ``aud``, ``exp``,
``nonce``) before anyone is signed in.

Who the user is: the ID token's ``roles``, ``team`` and ``staff_id`` claims, read as the API
reads them from its bearer tokens (``fhirbridge.api.auth``). Without ``roles`` (an EHR does not
know ours), its ``fhirUser`` is looked up among the care team's practitioner references: that
member signs in as a care manager of their team. Anyone else is refused.

SMART App Launch: ``/app/launch?iss=...&launch=...`` (EHR launch) or ``/app/launch?iss=...``
(standalone). ``iss`` must be one of ``smart_launch_issuers``: the app fetches only from EHRs an
operator listed, so the parameter can be used neither to redirect users elsewhere nor to make
the server call arbitrary hosts. The token response's ``patient`` is matched to our patient
through its FHIR link (``PatientLink.ehr_reference``); a patient we do not know and one of
another team answer the same 404 page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import jwt
from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jwt import PyJWK, PyJWKSet

from fhirbridge.api.access import sees_team
from fhirbridge.api.auth import AuthenticationFailed, Principal, Role, principal_from_claims
from fhirbridge.api.deps import AppState
from fhirbridge.config import Settings
from fhirbridge.domain import CareTeamMember
from fhirbridge.persistence import Store, unit_of_work
from fhirbridge.web.pages import error_page, templates
from fhirbridge.web.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    CheckedSession,
    clear_session_cookie,
    new_session,
    safe_next,
    session_secret,
    set_session_cookie,
)

__all__ = ["router"]

router = APIRouter(prefix="/app", include_in_schema=False)

FLOW_COOKIE = "fhirbridge_sign_in"
DEV_COOKIE = "fhirbridge_dev_sign_in"
# Time the user has to sign in at the provider before the flow must start again.
_FLOW_SECONDS = 600
_FLOW_AUDIENCE = "fhirbridge-web-sign-in"
_DEV_AUDIENCE = "fhirbridge-web-dev-sign-in"
_ID_TOKEN_ALGORITHMS = frozenset({"RS256", "ES256", "PS256"})
_HTTP_TIMEOUT_SECONDS = 10.0
_DEV_ROLES = tuple(role.value for role in Role)


class SignInFailed(Exception):
    """Why a sign-in was refused; shown to the user (it never holds a token)."""


@dataclass(frozen=True, slots=True)
class Provider:
    """The endpoints and identity of an authorization server, from its discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


# -- the pages ------------------------------------------------------------------------------

_SIGN_IN = templates.env.from_string(
    """{% extends "base.html" %}
{% block title %}Sign in{% endblock %}
{% block main %}
<h1>Sign in</h1>
{% if oidc %}
<p><a class="button" href="/app/sign-in/start?next={{ next | urlencode }}">Sign in with your
organisation's account</a></p>
{% endif %}
{% if dev %}
<section aria-labelledby="dev-heading">
<h2 id="dev-heading">Development sign-in</h2>
<p class="problem">This is the development sign-in: anyone can sign in as anyone. It is enabled
by FHIRBRIDGE_WEB_DEV_SIGN_IN and must never be on for a real installation.</p>
<form method="post" action="/app/sign-in/dev" class="fields">
  <input type="hidden" name="{{ csrf_field }}" value="{{ dev_csrf }}">
  <input type="hidden" name="next" value="{{ next }}">
  <label for="dev-staff">Care team member</label>
  <select id="dev-staff" name="staff_id">
    <option value="">(none: billing or admin)</option>
    {% for member in staff %}
    <option value="{{ member.id }}">{{ member.name }} ({{ member.team }})</option>
    {% endfor %}
  </select>
  <label for="dev-role">Role</label>
  <select id="dev-role" name="role">
    {% for role in roles %}<option value="{{ role }}">{{ role }}</option>{% endfor %}
  </select>
  <div class="full"><button type="submit">Sign in (development)</button></div>
</form>
</section>
{% endif %}
{% if not oidc and not dev %}
<p>Sign-in is not configured: set FHIRBRIDGE_OIDC_ISSUER and FHIRBRIDGE_OIDC_CLIENT_ID, or
launch the app from your EHR.</p>
{% endif %}
{% endblock %}
"""
)

_FAILED = templates.env.from_string(
    """{% extends "base.html" %}
{% block title %}Sign-in failed{% endblock %}
{% block main %}
<h1>Sign-in failed</h1>
<p class="problem" role="alert">{{ reason }}</p>
<p><a href="/app/sign-in">Try again</a></p>
{% endblock %}
"""
)


def _html(template: Any, status_code: int = 200, **context: Any) -> HTMLResponse:
    body = template.render(header=None, csrf_field=CSRF_FIELD, csrf_header=CSRF_HEADER, **context)
    return HTMLResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})


def _failed(reason: str, status_code: int = 400) -> HTMLResponse:
    response = _html(_FAILED, status_code, reason=reason, csrf_token="")
    response.delete_cookie(FLOW_COOKIE, path="/app")
    return response


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.fhirbridge
    return state


def _oidc_configured(settings: Settings) -> bool:
    return settings.oidc_issuer is not None and settings.oidc_client_id is not None


@router.get("/sign-in", name="sign_in")
def sign_in_page(request: Request, next: str | None = None) -> Response:
    settings = _state(request).settings
    target = safe_next(next)
    staff: list[CareTeamMember] = []
    dev_csrf = ""
    if settings.web_dev_sign_in:
        with unit_of_work(_state(request).sessions, read_only=True) as session:
            staff = sorted(Store(session).care_team.list_all(), key=lambda m: (m.team, m.name))
        dev_csrf = secrets.token_urlsafe(32)
    response = _html(
        _SIGN_IN,
        oidc=_oidc_configured(settings),
        dev=settings.web_dev_sign_in,
        next=target,
        staff=staff,
        roles=_DEV_ROLES,
        dev_csrf=dev_csrf,
        csrf_token="",
    )
    if dev_csrf:
        # The dev form's token is checked against this cookie (double submit): a sign-in
        # cannot be forged from another site either.
        value = _sign(settings, {"csrf": dev_csrf}, audience=_DEV_AUDIENCE)
        _set_flow_cookie(response, request, DEV_COOKIE, value)
    return response


@router.get("/sign-in/start", name="sign_in_start")
async def sign_in_start(request: Request, next: str | None = None) -> Response:
    settings = _state(request).settings
    if settings.oidc_issuer is None or settings.oidc_client_id is None:
        return _failed("Sign-in with an OpenID Connect provider is not configured.", 404)
    try:
        provider = await _discover_oidc(settings.oidc_issuer)
    except SignInFailed as error:
        return _failed(str(error), 502)
    return _authorize(
        request,
        provider,
        kind="oidc",
        client_id=settings.oidc_client_id,
        scope=settings.oidc_scopes,
        redirect_uri=str(request.url_for("sign_in_callback")),
        next_path=safe_next(next),
    )


@router.get("/sign-in/callback", name="sign_in_callback")
async def sign_in_callback(request: Request) -> Response:
    state = _state(request)
    settings = state.settings
    try:
        flow = _flow(request, kind="oidc")
        if settings.oidc_client_id is None:
            raise SignInFailed("Sign-in with an OpenID Connect provider is not configured.")
        tokens, claims = await _redeem(
            request,
            flow,
            client_id=settings.oidc_client_id,
            client_secret=_secret(settings.oidc_client_secret),
            redirect_uri=str(request.url_for("sign_in_callback")),
        )
        del tokens  # the app calls no API with the provider's access token
        principal = _principal(state, claims)
    except SignInFailed as error:
        return _failed(str(error))
    response = RedirectResponse(flow["next"], status_code=303)
    set_session_cookie(response, request, settings, new_session(principal))
    response.delete_cookie(FLOW_COOKIE, path="/app")
    return response


@router.get("/launch", name="smart_launch")
async def smart_launch(
    request: Request,
    iss: Annotated[str, Query(max_length=255)],
    launch: Annotated[str | None, Query(max_length=255)] = None,
) -> Response:
    settings = _state(request).settings
    fhir_base = iss.rstrip("/")
    # Compared before anything is fetched: see the module docstring.
    if fhir_base not in {allowed.rstrip("/") for allowed in settings.smart_launch_issuers}:
        return _failed("This EHR is not allowed to launch the app.")
    if settings.smart_launch_client_id is None:
        return _failed("SMART App Launch is not configured.", 404)
    try:
        provider = await _discover_smart(fhir_base)
    except SignInFailed as error:
        return _failed(str(error), 502)
    # EHR launch: the EHR's launch context; standalone launch: the user picks a patient there.
    scope = settings.smart_launch_scopes
    if launch is None:
        scope = " ".join(s for s in scope.split() if s != "launch") + " launch/patient"
    extra = {"aud": fhir_base} | ({} if launch is None else {"launch": launch})
    return _authorize(
        request,
        provider,
        kind="smart",
        client_id=settings.smart_launch_client_id,
        scope=scope,
        redirect_uri=str(request.url_for("smart_launch_callback")),
        next_path="/app",
        extra=extra,
    )


@router.get("/launch/callback", name="smart_launch_callback")
async def smart_launch_callback(request: Request) -> Response:
    state = _state(request)
    settings = state.settings
    try:
        flow = _flow(request, kind="smart")
        if settings.smart_launch_client_id is None:
            raise SignInFailed("SMART App Launch is not configured.")
        tokens, claims = await _redeem(
            request,
            flow,
            client_id=settings.smart_launch_client_id,
            client_secret=_secret(settings.smart_launch_client_secret),
            redirect_uri=str(request.url_for("smart_launch_callback")),
        )
        principal = _principal(state, claims)
    except SignInFailed as error:
        return _failed(str(error))
    patient = tokens.get("patient")
    our_id = None
    if isinstance(patient, str) and patient:
        with unit_of_work(state.sessions, read_only=True) as session:
            link = Store(session).patients.find_by_ehr_reference(f"Patient/{patient}")
        if link is not None and sees_team(principal, link.team):
            our_id = link.id
    session_ = new_session(principal, patient_context=our_id)
    if isinstance(patient, str) and patient and our_id is None:
        # Unknown here, or another team's: the same page either way, naming nothing.
        response = error_page(request, 404)
    else:
        target = "/app" if our_id is None else f"/app/patients/{our_id}"
        response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, request, settings, session_)
    response.delete_cookie(FLOW_COOKIE, path="/app")
    return response


@router.post("/sign-in/dev", name="dev_sign_in")
def dev_sign_in(
    request: Request,
    csrf_token: Annotated[str, Form(max_length=255)] = "",
    staff_id: Annotated[str, Form(max_length=64)] = "",
    role: Annotated[str, Form(max_length=64)] = "",
    next: Annotated[str, Form(max_length=255)] = "/app",
) -> Response:
    state = _state(request)
    settings = state.settings
    if not settings.web_dev_sign_in:
        return error_page(request, 404)
    expected = _unsign(settings, request.cookies.get(DEV_COOKIE), audience=_DEV_AUDIENCE)
    if expected is None or not hmac.compare_digest(
        csrf_token.encode(), str(expected.get("csrf", "")).encode()
    ):
        return _failed("The sign-in form is out of date: load it again.", 403)
    if role not in _DEV_ROLES:
        return _failed("Choose a role.")
    member = None
    if staff_id:
        with unit_of_work(state.sessions, read_only=True) as session:
            member = Store(session).care_team.get(staff_id)
        if member is None:
            return _failed("No such care team member.")
    if member is None and role in (Role.CARE_MANAGER, Role.SUPERVISOR):
        return _failed("A care manager or supervisor signs in as a care team member.")
    principal = Principal(
        id=f"user:dev-{staff_id or role}",
        roles=frozenset({Role(role)}),
        team=None if member is None else member.team,
        staff_id=None if member is None else member.id,
    )
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(response, request, settings, new_session(principal))
    response.delete_cookie(DEV_COOKIE, path="/app")
    return response


@router.post("/sign-out", name="sign_out")
def sign_out(request: Request, session: CheckedSession) -> Response:
    del session  # checked: a sign-out cannot be forged from another site
    response = RedirectResponse("/app/sign-in", status_code=303)
    clear_session_cookie(response, request)
    return response


# -- the authorization code flow ------------------------------------------------------------


def _authorize(
    request: Request,
    provider: Provider,
    *,
    kind: str,
    client_id: str,
    scope: str,
    redirect_uri: str,
    next_path: str,
    extra: dict[str, str] | None = None,
) -> Response:
    settings = _state(request).settings
    flow_state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": flow_state,
        "nonce": nonce,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        **(extra or {}),
    }
    flow = {
        "kind": kind,
        "state": flow_state,
        "nonce": nonce,
        "verifier": verifier,
        "next": next_path,
        "issuer": provider.issuer,
        "token_endpoint": provider.token_endpoint,
        "jwks_uri": provider.jwks_uri,
    }
    separator = "&" if "?" in provider.authorization_endpoint else "?"
    response = RedirectResponse(
        f"{provider.authorization_endpoint}{separator}{urlencode(query)}", status_code=303
    )
    _set_flow_cookie(response, request, FLOW_COOKIE, _sign(settings, flow, _FLOW_AUDIENCE))
    return response


def _flow(request: Request, *, kind: str) -> dict[str, Any]:
    """The flow this callback ends, once its ``state`` matches; the provider's own refusal
    (``error``) is reported without the description, which the provider controls."""
    flow = _unsign(
        _state(request).settings, request.cookies.get(FLOW_COOKIE), audience=_FLOW_AUDIENCE
    )
    if flow is None or flow.get("kind") != kind:
        raise SignInFailed("The sign-in took too long or was started elsewhere: start again.")
    returned = request.query_params.get("state", "")
    if not hmac.compare_digest(returned.encode(), str(flow["state"]).encode()):
        raise SignInFailed("The sign-in answer does not belong to this sign-in: start again.")
    if "error" in request.query_params:
        raise SignInFailed("The sign-in provider refused the sign-in.")
    if not request.query_params.get("code"):
        raise SignInFailed("The sign-in provider sent no authorization code.")
    return flow


async def _redeem(
    request: Request,
    flow: dict[str, Any],
    *,
    client_id: str,
    client_secret: str | None,
    redirect_uri: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The token response for the callback's code, and the claims of its verified ID token."""
    form = {
        "grant_type": "authorization_code",
        "code": request.query_params["code"],
        "redirect_uri": redirect_uri,
        "code_verifier": flow["verifier"],
        "client_id": client_id,
    }
    # A confidential client authenticates with client_secret_basic; a public one by PKCE only.
    auth = None if client_secret is None else httpx.BasicAuth(client_id, client_secret)
    async with httpx.AsyncClient(timeout=_HTTP_TIMEOUT_SECONDS, auth=auth) as client:
        try:
            answer = await client.post(
                flow["token_endpoint"], data=form, headers={"Accept": "application/json"}
            )
            tokens = answer.json() if answer.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as error:
            raise SignInFailed("The sign-in provider could not be reached.") from error
        if not isinstance(tokens, dict) or not isinstance(tokens.get("id_token"), str):
            raise SignInFailed("The sign-in provider did not issue an ID token.")
        keys = await _jwks(client, flow["jwks_uri"])
    claims = _verify_id_token(
        tokens["id_token"],
        keys,
        issuer=flow["issuer"],
        audience=client_id,
        nonce=flow["nonce"],
        leeway=_state(request).settings.jwt_leeway_seconds,
    )
    return tokens, claims


def _verify_id_token(
    token: str, keys: list[PyJWK], *, issuer: str, audience: str, nonce: str, leeway: int
) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise SignInFailed("The ID token is malformed.") from error
    algorithm = header.get("alg")
    if algorithm not in _ID_TOKEN_ALGORITHMS:
        raise SignInFailed("The ID token is signed with an algorithm not accepted here.")
    kid = header.get("kid")
    candidates = [k for k in keys if k.algorithm_name == algorithm]
    matching = [k for k in candidates if k.key_id == kid] if kid else candidates
    if len(matching) != 1:
        raise SignInFailed("The ID token is signed with an unknown key.")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            matching[0].key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["iss", "aud", "exp", "iat", "sub", "nonce"]},
        )
    except jwt.PyJWTError as error:
        raise SignInFailed("The ID token does not verify.") from error
    if not hmac.compare_digest(str(claims["nonce"]).encode(), nonce.encode()):
        raise SignInFailed("The ID token was issued for another sign-in.")
    return claims


def _principal(state: AppState, claims: dict[str, Any]) -> Principal:
    if "roles" in claims:
        try:
            return principal_from_claims(claims)
        except AuthenticationFailed as error:
            raise SignInFailed(f"The sign-in is incomplete: {error.reason}.") from error
    fhir_user = claims.get("fhirUser")
    member = None
    if isinstance(fhir_user, str):
        # fhirUser may be absolute (https://ehr/fhir/Practitioner/1): its type and id count.
        reference = "/".join(fhir_user.rstrip("/").split("/")[-2:])
        with unit_of_work(state.sessions, read_only=True) as session:
            member = Store(session).care_team.find_by_practitioner_reference(reference)
    if member is None:
        raise SignInFailed("You are not a member of a care team here.")
    return Principal(
        id=f"user:{claims['sub']}",
        roles=frozenset({Role.CARE_MANAGER}),
        team=member.team,
        staff_id=member.id,
    )


# -- discovery ------------------------------------------------------------------------------


async def _discover_oidc(issuer: str) -> Provider:
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    document = await _get_json(url)
    provider = _provider(document)
    # OpenID Connect Discovery 1.0, 4.3: the document must be the issuer's own.
    if provider.issuer.rstrip("/") != issuer.rstrip("/"):
        raise SignInFailed("The sign-in provider's configuration names another issuer.")
    return provider


async def _discover_smart(fhir_base: str) -> Provider:
    document = await _get_json(f"{fhir_base}/.well-known/smart-configuration")
    capabilities = document.get("capabilities")
    if not isinstance(capabilities, list) or "sso-openid-connect" not in capabilities:
        raise SignInFailed("The EHR does not offer OpenID Connect sign-in to launched apps.")
    methods = document.get("code_challenge_methods_supported")
    if not isinstance(methods, list) or "S256" not in methods:
        raise SignInFailed("The EHR does not support PKCE with S256.")
    return _provider(document)


def _provider(document: dict[str, Any]) -> Provider:
    fields = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
    values = [document.get(name) for name in fields]
    if not all(isinstance(v, str) and v for v in values):
        raise SignInFailed("The sign-in provider's configuration is incomplete.")
    issuer, authorization, token, jwks_uri = (str(v) for v in values)
    return Provider(issuer, authorization, token, jwks_uri)


async def _get_json(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=_HTTP_TIMEOUT_SECONDS) as client:
        try:
            answer = await client.get(url, headers={"Accept": "application/json"})
            answer.raise_for_status()
            document = answer.json()
        except (httpx.HTTPError, ValueError) as error:
            raise SignInFailed("The sign-in provider could not be reached.") from error
    if not isinstance(document, dict):
        raise SignInFailed("The sign-in provider's configuration is not a JSON object.")
    return document


async def _jwks(client: httpx.AsyncClient, url: str) -> list[PyJWK]:
    try:
        answer = await client.get(url, headers={"Accept": "application/json"})
        answer.raise_for_status()
        keys = PyJWKSet.from_dict(answer.json())
    except (httpx.HTTPError, ValueError, jwt.PyJWTError) as error:
        raise SignInFailed("The sign-in provider's keys could not be read.") from error
    return list(keys.keys)


# -- the flow cookie ------------------------------------------------------------------------


def _sign(settings: Settings, claims: dict[str, Any], audience: str) -> str:
    payload = {**claims, "aud": audience, "exp": int(time.time()) + _FLOW_SECONDS}
    return jwt.encode(payload, session_secret(settings), algorithm="HS256")


def _unsign(settings: Settings, value: str | None, audience: str) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            value, session_secret(settings), algorithms=["HS256"], audience=audience
        )
    except jwt.PyJWTError:
        return None
    return claims


def _set_flow_cookie(response: Response, request: Request, name: str, value: str) -> None:
    # SameSite=Lax: the provider's redirect back is a top-level GET, which still carries it.
    response.set_cookie(
        name,
        value,
        max_age=_FLOW_SECONDS,
        path="/app",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def _secret(value: Any) -> str | None:
    return None if value is None else str(value.get_secret_value())
