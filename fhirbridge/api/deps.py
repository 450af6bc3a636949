"""Request dependencies, as Annotated aliases: ``Caller`` (who is calling) and ``Work`` (one
unit of work per request, with idempotent replays of POSTs).

A request's writes are committed once, when its handler's work succeeds; any error rolls them
back, so a rejected request changes nothing. The commit happens before the response is built,
never after it was sent. Reads run in a read-only unit of work, which on SQLite never waits for
the write lock. A database that stays busy for longer than the unit of work waits answers 503
with ``Retry-After``: nothing was written, so the client may simply retry.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge import wiring
from fhirbridge.api.auth import Authenticator, Principal
from fhirbridge.api.busy import busy_problem
from fhirbridge.api.problems import Problem
from fhirbridge.config import Settings
from fhirbridge.mapping.loader import Mappings
from fhirbridge.persistence import DatabaseBusy, Store, unit_of_work
from fhirbridge.persistence.repositories import Clock
from fhirbridge.persistence.repositories.idempotency import IdempotencyRecord
from fhirbridge.services.errors import FieldError

__all__ = ["AppState", "Caller", "State", "Work", "authenticate", "work"]

T = TypeVar("T")
Payload = BaseModel | list[BaseModel]

bearer_scheme = HTTPBearer(auto_error=False, description="OAuth2 access token (JWT)")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


@dataclass
class AppState:
    settings: Settings
    sessions: sessionmaker[Session]
    authenticator: Authenticator
    clock: Clock
    tz: ZoneInfo
    _mappings: Mappings | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def mappings(self) -> Mappings:
        # Loaded on first use: only the FHIR views need them.
        with self._lock:
            if self._mappings is None:
                self._mappings = wiring.mappings(self.settings)
            return self._mappings


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.fhirbridge
    return state


State = Annotated[AppState, Depends(_state)]


def authenticate(
    state: State,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    try:
        return state.authenticator.authenticate(
            bearer_token=None if bearer is None else bearer.credentials, api_key=api_key
        )
    except DatabaseBusy as error:
        raise busy_problem() from error


Caller = Annotated[Principal, Depends(authenticate)]


class RequestWork:
    """The unit of work of one request."""

    def __init__(
        self,
        state: AppState,
        principal: Principal,
        *,
        method: str,
        path: str,
        idempotency_key: str | None,
        body: bytes,
    ) -> None:
        self._state = state
        self._principal = principal
        self._method = method
        self._path = path
        self._key = idempotency_key if method == "POST" else None
        self._body = body
        self._hash: str | None = None

    @property
    def tz(self) -> ZoneInfo:
        return self._state.tz

    @property
    def identifier_system(self) -> str:
        return self._state.settings.identifier_system

    @property
    def mappings(self) -> Mappings:
        return self._state.mappings

    def now(self) -> datetime:
        return self._state.clock()

    def read(self, run: Callable[[Store], T]) -> T:
        """Run ``run`` in a read-only unit of work (a write in it fails) and return its result."""
        try:
            with unit_of_work(self._state.sessions, read_only=True) as session:
                return run(Store(session, clock=self._state.clock))
        except DatabaseBusy as error:
            raise busy_problem() from error

    def write(self, run: Callable[[Store], Payload], *, status_code: int = 200) -> JSONResponse:
        """Run ``run`` in a unit of work and answer with what it returns.

        With an Idempotency-Key (POST only), the answer is stored in the same transaction; a
        retry with the same key and the same request gets it back without running again (one
        sent while the first still runs waits for it), the same key with a different request
        is refused (422). Refused requests are not stored:
        nothing was written, so a retry is judged afresh.
        """
        try:
            with unit_of_work(self._state.sessions) as session:
                store = Store(session, clock=self._state.clock)
                claim = None
                if self._key is not None:
                    # Retries racing the first request wait for it here, then replay its answer.
                    claimed = store.idempotency.claim(
                        principal=self._principal.id,
                        key=self._key,
                        method=self._method,
                        path=self._path,
                        request_hash=self._request_hash(),
                    )
                    if isinstance(claimed, IdempotencyRecord):
                        return self._replay(claimed)
                    claim = claimed
                content = _json(run(store))
                if claim is not None:
                    store.idempotency.settle(
                        claim, status_code=status_code, response_body={"content": content}
                    )
        except DatabaseBusy as error:
            raise busy_problem() from error
        except IntegrityError as error:
            if self._key is None:
                raise
            raise Problem(
                409,
                "idempotency-key-in-use",
                "Request already in progress",
                "another request with this Idempotency-Key was being processed; retry",
            ) from error
        return JSONResponse(content, status_code=status_code)

    def _replay(self, stored: IdempotencyRecord) -> JSONResponse:
        if stored.request_hash != self._request_hash():
            raise Problem(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "this Idempotency-Key was used for a different request",
                errors=[FieldError("Idempotency-Key", "already used with another request")],
            )
        content = (stored.response_body or {}).get("content")
        return JSONResponse(
            content, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"}
        )

    def _request_hash(self) -> str:
        if self._hash is None:
            self._hash = _request_hash(self._method, self._path, self._body)
        return self._hash


def _request_hash(method: str, path: str, body: bytes) -> str:
    try:
        # Same JSON, same request: key order and spacing do not make a retry different.
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
        body = canonical.encode()
    except ValueError:
        pass
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def work(
    request: Request,
    state: State,
    principal: Caller,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            # Printable ASCII only: the key is stored and compared, never interpreted.
            pattern=r"^[\x21-\x7e]+$",
            description="POST only: a retry with the same key and body replays the answer",
        ),
    ] = None,
) -> RequestWork:
    return RequestWork(
        state,
        principal,
        method=request.method,
        path=request.url.path,
        idempotency_key=idempotency_key,
        body=await request.body(),
    )


Work = Annotated[RequestWork, Depends(work)]


def _json(payload: Payload) -> Any:
    if isinstance(payload, list):
        return [item.model_dump(mode="json") for item in payload]
    return payload.model_dump(mode="json")
