"""Pytest fixtures for the strict FHIR server (registered in tests/conftest.py).

``strict_fhir_server``: one strict proxy with default ``Quirks`` and its own sekmet upstream for
the session (per xdist worker). Tests sharing it must use identifiers of their own.
``strict_server_factory``: ``(quirks=Quirks(), *, upstream=None) -> StrictFhirServer`` for a
test that needs other quirks or a server of its own (kill it, count its resources); each call
starts its own sekmet unless ``upstream`` is given; everything is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from fhirbridge.localserver import LocalFhirServer
from tests.servers.strict import Quirks, StrictFhirServer, start_strict_server

__all__ = ["StrictServerFactory", "strict_fhir_server", "strict_server_factory"]


_DEFAULT = Quirks()


class StrictServerFactory(Protocol):
    def __call__(
        self, quirks: Quirks = ..., *, upstream: LocalFhirServer | None = None
    ) -> StrictFhirServer: ...


@pytest.fixture(scope="session")
def strict_fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StrictFhirServer]:
    """A strict FHIR server (default quirks) in front of a sekmet of its own, for the session."""
    server = start_strict_server(tmp_path_factory.mktemp("strict-sekmet"))
    yield server
    server.stop()
    _fail_on_proxy_errors([server])


@pytest.fixture
def strict_server_factory(tmp_path: Path) -> Iterator[StrictServerFactory]:
    """Start strict servers with the given quirks; all are stopped when the test ends."""
    started: list[StrictFhirServer] = []

    def start(
        quirks: Quirks = _DEFAULT, *, upstream: LocalFhirServer | None = None
    ) -> StrictFhirServer:
        if upstream is None:
            server = start_strict_server(tmp_path / f"strict-sekmet-{len(started)}", quirks)
        else:
            server = StrictFhirServer(upstream, quirks=quirks).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()
    _fail_on_proxy_errors(started)


def _fail_on_proxy_errors(servers: list[StrictFhirServer]) -> None:
    """A 500 of the proxy's own is a bug in the test server, never the behaviour under test."""
    errors = [error for server in servers for error in server.errors]
    if errors:
        pytest.fail("the strict FHIR proxy failed: " + "; ".join(errors))
