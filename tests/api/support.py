"""What the API tests share: a caseload from fixtures/api, test key pairs, tokens, a clock."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from sqlalchemy import column, func, select, table
from sqlalchemy.orm import Session

from fhirbridge.domain import (
    CareTeamMember,
    ConsentMethod,
    ConsentStatus,
    Enrollment,
    EnrollmentStatus,
    PatientLink,
    Program,
    ProgramConsent,
    StaffRole,
)
from fhirbridge.persistence import Store, make_engine, unit_of_work
from tests.sessions import session_factory

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "api"
AUDIENCE = "fhirbridge-test"
ISSUER = "https://idp.example.test"
NOW = datetime(2026, 10, 15, 15, 0, tzinfo=UTC)


def time_entry_body(**changes: Any) -> dict[str, Any]:
    """The valid manual entry of fixtures/api/time_entry.json, with ``changes`` applied."""
    body: dict[str, Any] = json.loads((FIXTURES / "time_entry.json").read_text())
    body.update(changes)
    return body


@dataclass
class FakeClock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    def public_jwk(self) -> dict[str, Any]:
        if isinstance(self.private, rsa.RSAPrivateKey):
            text = RSAAlgorithm.to_jwk(self.private.public_key())
        else:
            text = ECAlgorithm.to_jwk(self.private.public_key())
        jwk: dict[str, Any] = json.loads(text)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}


def rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def write_jwks(path: Path, keys: list[SigningKey]) -> Path:
    path.write_text(json.dumps({"keys": [k.public_jwk() for k in keys]}), encoding="utf-8")
    return path


@dataclass
class Tokens:
    """Signs test tokens; claims default to a valid care-manager token of team north."""

    key: SigningKey
    defaults: dict[str, Any] = field(default_factory=dict)

    def sign(self, *, key: SigningKey | None = None, **claims: Any) -> str:
        signer = key or self.key
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(
            payload, signer.private, algorithm=signer.algorithm, headers={"kid": signer.kid}
        )

    def headers(self, *, key: SigningKey | None = None, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.sign(key=key, **claims)}"}


def care_manager(staff_id: str = "cm-north", team: str = "north") -> dict[str, Any]:
    return {
        "sub": f"user-{staff_id}",
        "roles": ["care-manager"],
        "team": team,
        "staff_id": staff_id,
    }


def supervisor(team: str = "north") -> dict[str, Any]:
    return {"sub": "user-sup", "roles": ["supervisor"], "team": team, "staff_id": "sup-north"}


def billing() -> dict[str, Any]:
    return {"sub": "user-billing", "roles": ["billing"]}


def load_caseload(url: str) -> None:
    """Store fixtures/api/caseload.yaml, without queueing anything for the FHIR server."""
    data = yaml.safe_load((FIXTURES / "caseload.yaml").read_text())
    engine = make_engine(url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            store = Store(session)
            for p in data["patients"]:
                store.save(PatientLink(**p))
            for s in data["staff"]:
                store.save(CareTeamMember(**{**s, "role": StaffRole(s["role"])}))
            for e in data["enrollments"]:
                consent = e.pop("consent")
                enrollment = Enrollment(
                    id=e["id"],
                    patient_id=e["patient_id"],
                    program=Program(e["program"]),
                    status=EnrollmentStatus(e["status"]),
                    start=date.fromisoformat(str(e["start"])),
                    end=_date(e.get("end")),
                    conditions=list(e.get("conditions", [])),
                    billing_practitioner_id=e.get("billing_practitioner_id"),
                )
                # Repositories directly: Store.save would queue them for the FHIR server.
                store.enrollments.save(enrollment)
                store.consents.save(
                    ProgramConsent(
                        id=consent["id"],
                        patient_id=enrollment.patient_id,
                        enrollment_id=enrollment.id,
                        program=enrollment.program,
                        status=ConsentStatus.ACTIVE,
                        given_on=_date(consent["given_on"]) or date.min,
                        method=ConsentMethod(consent["method"]),
                        recorded_by_id=consent["recorded_by_id"],
                    )
                )
    finally:
        engine.dispose()


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def count_rows(url: str, name: str, **where: str) -> int:
    """Rows of table ``name`` (optionally where column == value), read straight from the DB."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = table(name, *(column(c) for c in where))
            statement = select(func.count()).select_from(rows)
            for name_, value in where.items():
                statement = statement.where(rows.c[name_] == value)
            return int(session.scalar(statement) or 0)
    finally:
        engine.dispose()
