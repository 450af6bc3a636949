"""What the push learned about a server is kept across runs, and a learned limit only shrinks."""

from __future__ import annotations

import threading

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.persistence import unit_of_work
from fhirbridge.persistence.repositories.server_profiles import ServerProfiles

BASE = "http://127.0.0.1:9/fhir"


def _learn(sessions: sessionmaker[Session], entries: int | None) -> None:
    with unit_of_work(sessions) as session:
        ServerProfiles(session).set_max_transaction_entries(BASE, entries)


def _limit(sessions: sessionmaker[Session]) -> int | None:
    with sessions() as session:
        profile = ServerProfiles(session).get(BASE)
    return None if profile is None else profile.max_transaction_entries


def test_a_learned_limit_is_found_under_the_base_url_with_or_without_its_slash(
    engine: Engine,
) -> None:
    sessions = sessionmaker(engine)
    _learn(sessions, 8)

    with sessions() as session:
        assert ServerProfiles(session).get(BASE + "/") is not None
    assert _limit(sessions) == 8


def test_a_larger_limit_learned_later_does_not_raise_a_smaller_one(engine: Engine) -> None:
    sessions = sessionmaker(engine)
    _learn(sessions, 4)

    _learn(sessions, 8)

    assert _limit(sessions) == 4


def test_a_smaller_limit_replaces_a_larger_one(engine: Engine) -> None:
    sessions = sessionmaker(engine)
    _learn(sessions, 8)

    _learn(sessions, 2)

    assert _limit(sessions) == 2


def test_forgetting_the_limit_clears_it(engine: Engine) -> None:
    sessions = sessionmaker(engine)
    _learn(sessions, 8)

    _learn(sessions, None)

    assert _limit(sessions) is None


def test_workers_learning_at_once_keep_the_smallest_limit(engine: Engine) -> None:
    sessions = sessionmaker(engine)
    limits = [50, 8, 25, 3, 12, 40, 6, 30]
    barrier = threading.Barrier(len(limits))
    failures: list[BaseException] = []

    def learn(entries: int) -> None:
        try:
            barrier.wait(timeout=10)
            _learn(sessions, entries)
        except BaseException as exc:  # reported below, not swallowed
            failures.append(exc)

    threads = [threading.Thread(target=learn, args=(n,)) for n in limits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert failures == []
    assert _limit(sessions) == 3
