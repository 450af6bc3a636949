from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from fhirbridge.api.deps import State

router = APIRouter(tags=["health"])


@router.get("/health")
def health(state: State) -> dict[str, str]:
    """Liveness and database reachability; needs no credentials and says nothing else."""
    with state.sessions() as session:
        session.execute(text("SELECT 1"))
    return {"status": "ok"}
