"""Who is calling: OAuth2 bearer JWTs for people, API keys for machine clients.

Bearer tokens are verified with PyJWT against the keys of a JWKS file (``jwt_jwks_path``;
RS256 or ES256 only, each key with its own algorithm so one kind of key never verifies another
kind's signature). ``exp`` and ``sub`` are required, ``aud`` must be ``jwt_audience`` and, when
configured, ``iss`` must be ``jwt_issuer``. Claims read:

- ``roles``: a list (or space-separated string) of ``care-manager``, ``supervisor``,
  ``billing``, ``admin``; unknown roles are ignored;
- ``team``: the care team whose patients the caller works with (required except for admins);
- ``staff_id``: the caller's care team member id, whose time they record.

API keys (``X-API-Key``) look like ``fbk_<key id>.<secret>``; only the SHA-256 of the whole key
is stored, with the role and team it grants, and it is compared in constant time.

Tokens and keys are never logged or echoed back, not even in error details.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.config import Settings
from fhirbridge.persistence import Store, unit_of_work

__all__ = [
    "API_KEY_PREFIX",
    "AuthenticationFailed",
    "Authenticator",
    "Principal",
    "Role",
    "api_key_hash",
    "issue_api_key",
    "new_api_key",
]

API_KEY_PREFIX = "fbk_"
_SUPPORTED_ALGORITHMS = frozenset({"RS256", "ES256"})
# Compared against when the key id is unknown, so both paths do the same work.
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


class Role(StrEnum):
    CARE_MANAGER = "care-manager"
    SUPERVISOR = "supervisor"
    BILLING = "billing"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    id: str  # "user:<sub>" or "api-key:<key id>": the identity idempotency keys belong to
    roles: frozenset[Role]
    team: str | None = None
    staff_id: str | None = None

    def has(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)


class AuthenticationFailed(Exception):
    """No credentials, or credentials that do not check out (HTTP 401)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key(key_id: str) -> tuple[str, str]:
    """A fresh key for ``key_id`` and the hash to store; show the key once, keep only the hash."""
    if not key_id or "." in key_id:
        raise ValueError("an API key id is non-empty and has no '.'")
    key = f"{API_KEY_PREFIX}{key_id}.{secrets.token_urlsafe(32)}"
    return key, api_key_hash(key)


def issue_api_key(*, store: Store, key_id: str, role: Role, team: str | None) -> str:
    """Store a new key's hash with its role and team; returns the key, which is not kept."""
    key, digest = new_api_key(key_id)
    store.api_keys.add(key_id=key_id, key_hash=digest, role=role.value, team=team)
    return key


def load_jwks(path: Path) -> dict[str | None, PyJWK]:
    """The usable keys of a JWKS file by key id (None for a key without ``kid``)."""
    keys = PyJWKSet.from_json(path.read_text(encoding="utf-8"))
    return {
        key.key_id: key
        for key in keys
        if getattr(key, "algorithm_name", None) in _SUPPORTED_ALGORITHMS
    }


class Authenticator:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._leeway = settings.jwt_leeway_seconds
        self._algorithms = frozenset(settings.jwt_algorithms) & _SUPPORTED_ALGORITHMS
        self._keys = {} if settings.jwt_jwks_path is None else load_jwks(settings.jwt_jwks_path)
        self._sessions = sessions

    def authenticate(self, *, bearer_token: str | None, api_key: str | None) -> Principal:
        if api_key:
            return self._from_api_key(api_key)
        if bearer_token:
            return self._from_token(bearer_token)
        raise AuthenticationFailed("no credentials: send a Bearer token or an X-API-Key")

    # -- bearer tokens -----------------------------------------------------------------------

    def _from_token(self, token: str) -> Principal:
        key = self._signing_key(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise AuthenticationFailed("token expired") from error
        except jwt.InvalidAudienceError as error:
            raise AuthenticationFailed("token is for another audience") from error
        except jwt.InvalidIssuerError as error:
            raise AuthenticationFailed("token from an unknown issuer") from error
        except jwt.InvalidSignatureError as error:
            raise AuthenticationFailed("token signature does not verify") from error
        except jwt.MissingRequiredClaimError as error:
            raise AuthenticationFailed(f"token lacks the {error.claim!r} claim") from error
        except jwt.PyJWTError as error:
            raise AuthenticationFailed("invalid token") from error
        return _principal_from_claims(claims)

    def _signing_key(self, token: str) -> PyJWK:
        if not self._keys:
            raise AuthenticationFailed("bearer tokens are not accepted here")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise AuthenticationFailed("invalid token") from error
        if header.get("alg") not in self._algorithms:
            raise AuthenticationFailed("token algorithm not accepted")
        kid = header.get("kid")
        key = self._keys.get(kid)
        if key is None and kid is None and len(self._keys) == 1:
            key = next(iter(self._keys.values()))
        if key is None or key.algorithm_name != header.get("alg"):
            raise AuthenticationFailed("token signed with an unknown key")
        return key

    # -- API keys ----------------------------------------------------------------------------

    def _from_api_key(self, presented: str) -> Principal:
        key_id = presented.removeprefix(API_KEY_PREFIX).partition(".")[0]
        if not presented.startswith(API_KEY_PREFIX) or not key_id:
            raise AuthenticationFailed("malformed API key")
        with unit_of_work(self._sessions) as session:
            stored = Store(session).api_keys.get(key_id)
        expected = _DUMMY_HASH if stored is None else stored.key_hash
        matches = hmac.compare_digest(expected, api_key_hash(presented))
        if stored is None or not matches or stored.revoked_at is not None:
            raise AuthenticationFailed("unknown or revoked API key")
        return Principal(
            id=f"api-key:{key_id}",
            roles=frozenset(_roles(stored.role)),
            team=stored.team,
        )


def _principal_from_claims(claims: dict[str, Any]) -> Principal:
    subject = claims["sub"]
    team = claims.get("team")
    staff_id = claims.get("staff_id")
    if not isinstance(subject, str) or not subject:
        raise AuthenticationFailed("token 'sub' must be a non-empty string")
    if team is not None and not isinstance(team, str):
        raise AuthenticationFailed("token 'team' must be a string")
    if staff_id is not None and not isinstance(staff_id, str):
        raise AuthenticationFailed("token 'staff_id' must be a string")
    roles = frozenset(_roles(claims.get("roles")))
    if not team and roles & {Role.CARE_MANAGER, Role.SUPERVISOR}:
        raise AuthenticationFailed("token lacks the 'team' claim")
    return Principal(id=f"user:{subject}", roles=roles, team=team, staff_id=staff_id)


def _roles(raw: object) -> list[Role]:
    if isinstance(raw, str):
        names = raw.split()
    elif isinstance(raw, list):
        names = [n for n in raw if isinstance(n, str)]
    else:
        names = []
    known = {role.value for role in Role}
    return [Role(name) for name in names if name in known]


def jwks_document(public_keys: list[dict[str, Any]]) -> str:
    """A JWKS file's text from public JWKs (for operators and tests writing one)."""
    return json.dumps({"keys": public_keys}, indent=2)
