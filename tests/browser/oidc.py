"""The test authorization server: oidc-provider (tests/servers/oidc/server.js) in a node
process on 127.0.0.1, a free port, one per test process."""

from __future__ import annotations

import fcntl
import json
import select
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SERVER_DIR = Path(__file__).resolve().parents[1] / "servers" / "oidc"
ACCOUNTS = SERVER_DIR / "accounts.json"
CLIENT_ID = "fhirbridge-web"
SMART_CLIENT_ID = "fhirbridge-smart"
_START_SECONDS = 30


@dataclass(frozen=True)
class AuthorizationServer:
    issuer: str  # the OpenID provider
    fhir_base: str  # the EHR's FHIR base URL, the `iss` of a SMART launch


def install() -> None:
    """``npm ci`` the pinned oidc-provider once (scripts/bootstrap does it too); test processes
    started together wait for the first one's install."""
    node_modules = SERVER_DIR / "node_modules"
    with (SERVER_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (node_modules / "oidc-provider" / "package.json").exists():
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is missing: run scripts/bootstrap (it installs node and npm)")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=SERVER_DIR,
            check=True,
            timeout=300,
        )


@contextmanager
def running() -> Iterator[AuthorizationServer]:
    install()
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is missing: run scripts/bootstrap")
    process = subprocess.Popen(
        [node, "server.js", str(ACCOUNTS), CLIENT_ID, SMART_CLIENT_ID],
        cwd=SERVER_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        # The script prints one line once it listens (or dies, and the line is empty).
        ready, _, _ = select.select([process.stdout], [], [], _START_SECONDS)
        line = process.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"oidc-provider did not start (exit code {process.wait(5)})")
        started = json.loads(line)
        yield AuthorizationServer(issuer=started["issuer"], fhir_base=started["fhir_base"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
