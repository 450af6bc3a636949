"""Credentials for the REST API: API keys for machine clients, and development tokens for
trying the API on one's own machine.

* An API key is stored as a hash with the role and team it grants, and the care-team member
  whose time it records (``ApiKeys.issue``); the key itself is handed back once and never kept.
* A development token is a JWT signed with a key pair made on first use in a folder of the
  user's (``dev_signing_key``), which also holds the JWKS the server is pointed at
  (``FHIRBRIDGE_JWT_JWKS_PATH``). The private key never leaves that folder (mode 0600); its
  ``kid`` is the key's RFC 7638 thumbprint, so the JWKS and the tokens agree across runs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from fhirbridge.domain import Role
from fhirbridge.persistence import Store
from fhirbridge.services.errors import FieldError, Rejected

__all__ = [
    "DEV_ISSUER",
    "DevSigningKey",
    "IssuedKey",
    "dev_signing_key",
    "dev_token",
    "issue_api_key",
    "scope_errors",
    "staff_errors",
]

DEV_ISSUER = "urn:fhirbridge:dev"
_PRIVATE_KEY_FILE = "dev-signing-key.pem"
_JWKS_FILE = "jwks.json"
_ALGORITHM = "RS256"

_TEAM_BOUND = frozenset({Role.CARE_MANAGER, Role.SUPERVISOR})


def scope_errors(role: Role, team: str | None) -> list[FieldError]:
    """Why a credential for ``role`` and ``team`` would not work: care managers and supervisors
    work for one team, which the API requires them to name."""
    if role in _TEAM_BOUND and not team:
        return [FieldError("team", f"required for the {role.value} role")]
    if team is not None and (not team.strip() or len(team) > 64):
        return [FieldError("team", "1 to 64 characters")]
    return []


def staff_errors(store: Store, team: str | None, staff_id: str | None) -> list[FieldError]:
    """Why a credential for ``team`` could not record time as ``staff_id``: the API takes only
    a care-team member of the credential's team (of any team without one)."""
    if staff_id is None:
        return []
    member = store.care_team.get(staff_id)
    if member is None or (team is not None and member.team != team):
        place = "" if team is None else f" of team {team}"
        return [FieldError("staff_id", f"{staff_id!r} is no care-team member{place}")]
    return []


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key_id: str
    key: str  # shown once; only its hash is stored


def issue_api_key(
    *,
    store: Store,
    role: Role,
    team: str | None,
    key_id: str | None = None,
    staff_id: str | None = None,
) -> IssuedKey:
    """A new API key granting ``role`` (for ``team``, recording time as ``staff_id``);
    ``Rejected`` naming the field when the scope or the staff member does not fit,
    ``ApiKeyExists`` if ``key_id`` is taken."""
    errors = [*scope_errors(role, team), *staff_errors(store, team, staff_id)]
    if errors:
        raise Rejected("API key", errors)
    chosen = key_id or secrets.token_hex(6)
    key = store.api_keys.issue(key_id=chosen, role=role.value, team=team, staff_id=staff_id)
    return IssuedKey(chosen, key)


@dataclass(frozen=True)
class DevSigningKey:
    folder: Path
    kid: str
    private_key: rsa.RSAPrivateKey

    @property
    def jwks_path(self) -> Path:
        return self.folder / _JWKS_FILE


def dev_signing_key(folder: Path) -> DevSigningKey:
    """The development key pair of ``folder``, made there on first use; the folder's JWKS is
    (re)written from it, so the server trusts exactly this key."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    private_path = folder / _PRIVATE_KEY_FILE
    if private_path.exists():
        loaded = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError(f"{private_path} does not hold an RSA private key")
        private_key = loaded
    else:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Created with 0600 from the start: the key is never readable by others, not even briefly.
        descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
    public: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    kid = _thumbprint(public)
    jwk = {**public, "kid": kid, "use": "sig", "alg": _ALGORITHM}
    (folder / _JWKS_FILE).write_text(json.dumps({"keys": [jwk]}, indent=2), encoding="utf-8")
    return DevSigningKey(folder, kid, private_key)


def dev_token(
    key: DevSigningKey,
    *,
    role: Role,
    team: str | None,
    staff_id: str | None,
    audience: str,
    now: datetime,
    lifetime: timedelta,
    subject: str | None = None,
) -> str:
    """A bearer token the API accepts once it trusts ``key.jwks_path`` with ``audience`` and
    issuer ``DEV_ISSUER``."""
    claims: dict[str, Any] = {
        "iss": DEV_ISSUER,
        "aud": audience,
        "sub": subject or f"dev-{staff_id or role.value}",
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": secrets.token_hex(8),
        "roles": [role.value],
    }
    if team:
        claims["team"] = team
    if staff_id:
        claims["staff_id"] = staff_id
    return jwt.encode(claims, key.private_key, algorithm=_ALGORITHM, headers={"kid": key.kid})


def _thumbprint(public_jwk: dict[str, Any]) -> str:
    # RFC 7638: the required members in lexicographic order, no whitespace.
    canonical = json.dumps(
        {name: public_jwk[name] for name in ("e", "kty", "n")}, separators=(",", ":")
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
