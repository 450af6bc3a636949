from __future__ import annotations

from fastapi import APIRouter

from fhirbridge.api.deps import State
from fhirbridge.persistence.db import ping

router = APIRouter(tags=["health"])


@router.get("/health")
def health(state: State) -> dict[str, str]:
    """Liveness and database reachability; needs no credentials and says nothing else."""
    ping(state.sessions)
    return {"status": "ok"}
