"""Who is calling: OAuth2 bearer JWTs for people, API keys for machine clients.

Bearer tokens are verified with PyJWT against the keys of a JWKS file (``jwt_jwks_path``;
RS256 or ES256 only, each key with its own algorithm so one kind of key never verifies another
kind's signature). ``exp`` and ``sub`` are required, ``aud`` must be ``jwt_audience`` and, when
configured, ``iss`` must be ``jwt_issuer``. A token that passed is remembered (the latest
1 024), so the same token on a later request is only checked for expiry. Claims read:

- ``roles``: a list (or space-separated string) of ``care-manager``, ``supervisor``,
  ``billing``, ``admin``; unknown roles are ignored;
- ``team``: the care team whose patients the caller works with (required except for admins);
- ``staff_id``: the caller's care team member id, whose time they record.

API keys (``X-API-Key``) look like ``fbk_<key id>.<secret>``; only the SHA-256 of the whole key
is stored, with the role, team and staff member it grants, and it is compared in constant time.

``Role`` lives in the domain (``fhirbridge.domain.roles``) so that the services and commands
below the API name the same roles; it is re-exported here.

Tokens and keys are never logged or echoed back, not even in error details.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet

from fhirbridge.config import Settings
from fhirbridge.domain import Role
from fhirbridge.persistence import Store, unit_of_work
from fhirbridge.persistence.db import SessionFactory
from fhirbridge.persistence.repositories.api_keys import API_KEY_PREFIX, api_key_hash

__all__ = [
    "AuthenticationFailed",
    "Authenticator",
    "Principal",
    "Role",
    "issue_api_key",
]

_SUPPORTED_ALGORITHMS = frozenset({"RS256", "ES256"})
# Compared against when the key id is unknown, so both paths do the same work.
_DUMMY_HASH = api_key_hash("no such key")
# Bearer tokens whose signature and claims were verified, kept so that a client's next requests
# with the same token skip PyJWT's decoding and the RSA check (a client sends one token for
# many requests; verifying it again cost as much as a database round trip).
_VERIFIED_TOKENS = 1024


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


def issue_api_key(
    *, store: Store, key_id: str, role: Role, team: str | None, staff_id: str | None = None
) -> str:
    """Store a new key's hash with what it grants; returns the key, which is not kept."""
    return store.api_keys.issue(key_id=key_id, role=role.value, team=team, staff_id=staff_id)


def load_jwks(path: Path) -> dict[str | None, PyJWK]:
    """The usable keys of a JWKS file by key id (None for a key without ``kid``)."""
    keys = PyJWKSet.from_json(path.read_text(encoding="utf-8"))
    return {
        key.key_id: key
        for key in keys
        if getattr(key, "algorithm_name", None) in _SUPPORTED_ALGORITHMS
    }


class Authenticator:
    def __init__(self, settings: Settings, sessions: SessionFactory) -> None:
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._leeway = settings.jwt_leeway_seconds
        self._algorithms = frozenset(settings.jwt_algorithms) & _SUPPORTED_ALGORITHMS
        self._keys = {} if settings.jwt_jwks_path is None else load_jwks(settings.jwt_jwks_path)
        self._sessions = sessions
        # token -> (its principal, its exp). Read without the lock (a dict lookup is atomic);
        # written and trimmed under it.
        self._verified: dict[str, tuple[Principal, float]] = {}
        self._verified_lock = threading.Lock()

    def authenticate(self, *, bearer_token: str | None, api_key: str | None) -> Principal:
        if api_key:
            return self._from_api_key(api_key)
        if bearer_token:
            return self._from_token(bearer_token)
        raise AuthenticationFailed("no credentials: send a Bearer token or an X-API-Key")

    # -- bearer tokens -----------------------------------------------------------------------

    def _from_token(self, token: str) -> Principal:
        verified = self._verified.get(token)
        # The same token string verified before: same key, same claims. Only the expiry can
        # change its verdict, checked here as PyJWT checks it (an expired one is decoded again
        # below and refused with PyJWT's reason).
        if verified is not None and verified[1] > time.time() - self._leeway:
            return verified[0]
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
        principal = principal_from_claims(claims)
        self._remember_verified(token, principal, float(claims["exp"]))
        return principal

    def _remember_verified(self, token: str, principal: Principal, expires: float) -> None:
        with self._verified_lock:
            self._verified.pop(token, None)
            while len(self._verified) >= _VERIFIED_TOKENS:
                del self._verified[next(iter(self._verified))]  # the oldest
            self._verified[token] = (principal, expires)

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
        with unit_of_work(self._sessions, read_only=True) as session:
            stored = Store(session).api_keys.get(key_id)
        expected = _DUMMY_HASH if stored is None else stored.key_hash
        matches = hmac.compare_digest(expected, api_key_hash(presented))
        if stored is None or not matches or stored.revoked_at is not None:
            raise AuthenticationFailed("unknown or revoked API key")
        return Principal(
            id=f"api-key:{key_id}",
            roles=frozenset(_roles(stored.role)),
            team=stored.team,
            staff_id=stored.staff_id,
        )


_CLAIM_LENGTH = 255


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    subject = claims["sub"]
    team = claims.get("team")
    staff_id = claims.get("staff_id")
    if not isinstance(subject, str) or not subject:
        raise AuthenticationFailed("token 'sub' must be a non-empty string")
    if team is not None and not isinstance(team, str):
        raise AuthenticationFailed("token 'team' must be a string")
    if staff_id is not None and not isinstance(staff_id, str):
        raise AuthenticationFailed("token 'staff_id' must be a string")
    for name, value in (("sub", subject), ("team", team), ("staff_id", staff_id)):
        # These end up in queries and audit rows: the same bounds as ids in requests.
        if value is not None and (len(value) > _CLAIM_LENGTH or not value.isprintable()):
            raise AuthenticationFailed(f"token {name!r} must be printable, at most 255 characters")
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
