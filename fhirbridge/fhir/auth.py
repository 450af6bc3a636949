"""How the FHIR client authenticates: none, static bearer, HTTP Basic, or SMART Backend Services.

The scheme is chosen by configuration (``AuthSettings``, a tagged union that the application's
settings embed) and turned into an ``httpx.Auth`` by ``build_auth``. Secrets live in ``SecretStr``
and in objects whose ``repr`` leaves them out, so neither settings dumps nor logs show them.

SMART Backend Services (SMART App Launch 2.2, client_credentials with a JWT client assertion) is an
``httpx.Auth`` whose flow yields the discovery and token requests itself. That keeps the token
traffic on the client's own transport (same timeouts, same test doubles) and lets the client's
retry policy cover a token endpoint that is briefly down.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pydantic import BaseModel, Field, SecretStr

from fhirbridge.config import Settings
from fhirbridge.fhir.errors import (
    MalformedResponse,
    RateLimited,
    RequestInfo,
    ServerError,
    TokenEndpointError,
)

__all__ = [
    "ASSERTION_TYPE",
    "AuthSettings",
    "BasicAuthSettings",
    "BearerAuth",
    "BearerAuthSettings",
    "NoAuthSettings",
    "SigningKey",
    "SmartAuthSettings",
    "SmartBackendAuth",
    "build_auth",
]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# SMART caps the assertion's exp at 5 minutes; a minute less leaves room for clock skew.
_MAX_ASSERTION_LIFETIME = 300.0
_DEFAULT_ASSERTION_LIFETIME = 240.0

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


# --------------------------------------------------------------------------- settings


class NoAuthSettings(BaseModel):
    type: Literal["none"] = "none"


class BearerAuthSettings(BaseModel):
    type: Literal["bearer"] = "bearer"
    token: SecretStr


class BasicAuthSettings(BaseModel):
    type: Literal["basic"] = "basic"
    username: str
    password: SecretStr


class SmartAuthSettings(BaseModel):
    """SMART Backend Services. Give exactly one of ``private_key_path`` and ``jwks_path``."""

    type: Literal["smart"] = "smart"
    client_id: str
    private_key_path: Path | None = None
    jwks_path: Path | None = None
    kid: str | None = None
    scope: str = "system/*.rs"
    # Discovered from <base>/.well-known/smart-configuration when not set.
    token_url: str | None = None


AuthSettings = Annotated[
    NoAuthSettings | BearerAuthSettings | BasicAuthSettings | SmartAuthSettings,
    Field(discriminator="type"),
]


def build_auth(settings: AuthSettings, *, base_url: str) -> httpx.Auth | None:
    """The ``httpx.Auth`` for ``settings``; ``None`` for no authentication."""
    if isinstance(settings, NoAuthSettings):
        return None
    if isinstance(settings, BearerAuthSettings):
        return BearerAuth(settings.token.get_secret_value())
    if isinstance(settings, BasicAuthSettings):
        return httpx.BasicAuth(settings.username, settings.password.get_secret_value())
    if (settings.private_key_path is None) == (settings.jwks_path is None):
        raise ValueError("SMART auth needs exactly one of private_key_path and jwks_path")
    if settings.private_key_path is not None:
        key = SigningKey.from_pem(settings.private_key_path, kid=settings.kid)
    else:
        assert settings.jwks_path is not None
        key = SigningKey.from_jwks(settings.jwks_path, kid=settings.kid)
    return SmartBackendAuth(
        base_url=base_url,
        client_id=settings.client_id,
        key=key,
        scope=settings.scope,
        token_url=settings.token_url,
    )


# --------------------------------------------------------------------------- static schemes


class BearerAuth(httpx.Auth):
    """A static bearer token (e.g. issued out of band)."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(token=***)"


# --------------------------------------------------------------------------- SMART keys


@dataclass(frozen=True)
class SigningKey:
    """The client's private key, its ``kid`` and the JWS algorithm it signs with."""

    private_key: PrivateKey = field(repr=False)
    kid: str
    alg: Literal["RS384", "ES384"]

    @classmethod
    def from_private_key(cls, private_key: PrivateKey, *, kid: str | None = None) -> SigningKey:
        alg = _alg_for(private_key)
        return cls(
            private_key=private_key, kid=kid or jwk_thumbprint(public_jwk(private_key)), alg=alg
        )

    @classmethod
    def from_pem(cls, path: Path, *, kid: str | None = None) -> SigningKey:
        """An unencrypted PKCS#8 or traditional PEM private key; ``kid`` defaults to the RFC 7638
        thumbprint, which is what a JWKS generated from the same key will usually carry."""
        loaded = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path}: SMART needs an RSA or EC P-384 private key")
        return cls.from_private_key(loaded, kid=kid)

    @classmethod
    def from_jwks(cls, path: Path, *, kid: str | None = None) -> SigningKey:
        """A JWK Set file holding private keys; ``kid`` picks one, else the first usable one."""
        keys = json.loads(Path(path).read_text()).get("keys", [])
        for jwk in keys:
            if kid is not None and jwk.get("kid") != kid:
                continue
            if "d" not in jwk:
                continue
            loaded = _private_key_from_jwk(jwk)
            return cls.from_private_key(loaded, kid=jwk.get("kid") or kid)
        wanted = f"kid '{kid}'" if kid else "any private key"
        raise ValueError(f"{path}: no JWK with {wanted}")

    def public_jwk(self) -> dict[str, Any]:
        """The public half to register with the server, with ``kid`` and ``alg``."""
        return {**public_jwk(self.private_key), "kid": self.kid, "alg": self.alg, "use": "sig"}


def public_jwk(key: PrivateKey) -> dict[str, Any]:
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(public))
    else:
        jwk = json.loads(ECAlgorithm.to_jwk(public))
    return jwk


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256 over the required members in lexical order)."""
    required = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _alg_for(key: PrivateKey) -> Literal["RS384", "ES384"]:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS384"
    if isinstance(key.curve, ec.SECP384R1):
        return "ES384"
    raise ValueError(f"SMART ES384 needs a P-384 key, not {key.curve.name}")


def _private_key_from_jwk(jwk: dict[str, Any]) -> PrivateKey:
    text = json.dumps(jwk)
    loaded: object
    if jwk.get("kty") == "RSA":
        loaded = RSAAlgorithm.from_jwk(text)
    elif jwk.get("kty") == "EC":
        loaded = ECAlgorithm.from_jwk(text)
    else:
        raise ValueError(f"unsupported JWK kty {jwk.get('kty')!r}")
    if not isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"JWK {jwk.get('kid')!r} is not a private key")
    return loaded


# --------------------------------------------------------------------------- SMART flow


@dataclass(frozen=True)
class _AccessToken:
    value: str = field(repr=False)
    obtained_at: float
    expires_at: float

    def fresh_at(self, now: float, margin: float) -> bool:
        # Refresh a fraction of a short lifetime early, but at most `margin` early for long ones.
        lead = min(margin, (self.expires_at - self.obtained_at) * 0.25)
        return now < self.expires_at - lead


class SmartBackendAuth(httpx.Auth):
    """SMART Backend Services: signed client assertion -> cached access token -> Bearer header.

    The token is reused until shortly before it expires (``refresh_margin`` seconds, or a quarter
    of its lifetime if that is shorter). A 401 from the FHIR server drops the token and the request
    is sent once more with a new one; a second 401 is the caller's to see.

    ``clock`` (monotonic seconds) times the token cache; tests pass a fake one. The assertion's
    ``iat``/``exp`` use wall-clock time because the token endpoint checks them against its own.
    """

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        key: SigningKey,
        scope: str,
        token_url: str | None = None,
        assertion_lifetime: float = _DEFAULT_ASSERTION_LIFETIME,
        refresh_margin: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < assertion_lifetime <= _MAX_ASSERTION_LIFETIME:
            raise ValueError("SMART client assertions must expire within 5 minutes")
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.key = key
        self.scope = scope
        self.token_url = token_url
        self._assertion_lifetime = assertion_lifetime
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._token: _AccessToken | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return (
            f"SmartBackendAuth(client_id={self.client_id!r}, token_url={self.token_url!r}, "
            f"kid={self.key.kid!r}, scope={self.scope!r})"
        )

    def client_assertion(self, token_url: str) -> str:
        """A fresh signed assertion (new ``jti`` every call, as the token endpoint demands)."""
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": token_url,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + int(self._assertion_lifetime),
        }
        return jwt.encode(
            claims,
            self.key.private_key,
            algorithm=self.key.alg,
            headers={"kid": self.key.kid, "typ": "JWT"},
        )

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise NotImplementedError("SMART backend auth is implemented for the async client only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        for attempt in range(2):
            token = self._usable_token()
            if token is None:
                async with self._lock:
                    # Another request may have refreshed while this one waited.
                    token = self._usable_token()
                    if token is None:
                        steps = self._token_exchange()
                        outgoing = next(steps)
                        while token is None:
                            response = yield outgoing
                            await response.aread()
                            try:
                                outgoing = steps.send(response)
                            except StopIteration as done:
                                token = done.value
                                self._token = token
            request.headers["Authorization"] = f"Bearer {token.value}"
            response = yield request
            if response.status_code != 401 or attempt == 1:
                return
            if self._token is token:
                self._token = None

    def _usable_token(self) -> _AccessToken | None:
        token = self._token
        if token is not None and token.fresh_at(self._clock(), self._refresh_margin):
            return token
        return None

    def _token_exchange(self) -> Generator[httpx.Request, httpx.Response, _AccessToken]:
        """Discovery (once) and the token request, as requests for the flow to send."""
        if self.token_url is None:
            discovery = httpx.Request(
                "GET",
                f"{self.base_url}/.well-known/smart-configuration",
                headers={"Accept": "application/json"},
            )
            response = yield discovery
            self.token_url = _token_endpoint(discovery, response)
        token_request = httpx.Request(
            "POST",
            self.token_url,
            headers={"Accept": "application/json"},
            data={
                "grant_type": "client_credentials",
                "scope": self.scope,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.client_assertion(self.token_url),
            },
        )
        sent_at = self._clock()
        response = yield token_request
        return _access_token(token_request, response, sent_at)


def _request_info(request: httpx.Request) -> RequestInfo:
    return RequestInfo(request.method, str(request.url))


def _token_endpoint(request: httpx.Request, response: httpx.Response) -> str:
    info = _request_info(request)
    if response.status_code != 200:
        raise MalformedResponse(
            f"SMART discovery failed with HTTP {response.status_code}; set token_url explicitly",
            request=info,
            status=response.status_code,
        )
    body = _json_object(response)
    url = body.get("token_endpoint") if body else None
    if not isinstance(url, str):
        raise MalformedResponse(
            "smart-configuration has no token_endpoint", request=info, status=response.status_code
        )
    return url


def _access_token(request: httpx.Request, response: httpx.Response, sent_at: float) -> _AccessToken:
    info = _request_info(request)
    status = response.status_code
    body = _json_object(response)
    if status == 429:
        raise RateLimited(
            "token endpoint rate limited", request=info, status=status, retry_after=None
        )
    if status >= 500:
        raise ServerError("token endpoint failed", request=info, status=status)
    if status != 200:
        raise TokenEndpointError(
            f"token endpoint {request.url} refused the client assertion with HTTP {status}",
            request=info,
            status=status,
            error=_str_or_none(body.get("error")) if body else None,
            error_description=_str_or_none(body.get("error_description")) if body else None,
        )
    if body is None or not isinstance(body.get("access_token"), str):
        raise MalformedResponse("token response has no access_token", request=info, status=status)
    # RFC 6749 makes expires_in optional; without it, assume a short life and re-authenticate.
    expires_in = body.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, int | float) else 300.0
    return _AccessToken(
        value=body["access_token"], obtained_at=sent_at, expires_at=sent_at + lifetime
    )


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def auth_settings_from(settings: Settings) -> AuthSettings:
    """The FHIR server credentials, from ``FHIRBRIDGE_FHIR_AUTH`` and its companion variables.

    Raises ``ValueError`` naming the missing variables when the scheme is incomplete.
    """
    if settings.fhir_auth == "bearer":
        if settings.fhir_token is None:
            raise ValueError("FHIRBRIDGE_FHIR_TOKEN is required for bearer auth")
        return BearerAuthSettings(token=settings.fhir_token)
    if settings.fhir_auth == "basic":
        if settings.fhir_username is None or settings.fhir_password is None:
            raise ValueError("FHIRBRIDGE_FHIR_USERNAME and FHIRBRIDGE_FHIR_PASSWORD are required")
        return BasicAuthSettings(username=settings.fhir_username, password=settings.fhir_password)
    if settings.fhir_auth == "smart":
        if settings.smart_client_id is None or settings.smart_private_key_path is None:
            raise ValueError(
                "FHIRBRIDGE_SMART_CLIENT_ID and FHIRBRIDGE_SMART_PRIVATE_KEY_PATH are required"
            )
        return SmartAuthSettings(
            client_id=settings.smart_client_id,
            private_key_path=settings.smart_private_key_path,
            kid=settings.smart_key_id,
            scope=settings.smart_scopes,
        )
    return NoAuthSettings()
