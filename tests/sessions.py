"""Session factories for tests, with the shipped mapping files' sync plan.

``Store.save`` learns from the session which resources a record syncs as; every test that
builds a session factory takes the plan from here, loaded once per test process.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.mapping.loader import Mappings, load_mappings
from fhirbridge.mapping.plan import SyncPlan
from fhirbridge.persistence import make_session_factory

__all__ = ["session_factory", "shipped_mappings", "sync_plan"]


@cache
def shipped_mappings() -> Mappings:
    return load_mappings(PROJECT_ROOT / "mappings")


def sync_plan() -> SyncPlan:
    return shipped_mappings().plan


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine, sync_plan=sync_plan())
