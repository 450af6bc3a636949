"""`fhirbridge serve --workers N`: several server processes on PostgreSQL, refused on SQLite
(one writer at a time there), and said so in the command's help."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from fhirbridge.cli import app
from fhirbridge.persistence.scratch import DatabaseUnavailable, scratch_database
from tests.conftest import POSTGRES_URL

runner = CliRunner()
FHIRBRIDGE = Path(sys.executable).with_name("fhirbridge")
# A safety net for a server that never comes up, never what is asserted.
GIVE_UP_SECONDS = 60


def test_serve_refuses_more_than_one_worker_on_sqlite_with_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "api.db"
    monkeypatch.setenv("FHIRBRIDGE_DATABASE_URL", f"sqlite:///{database}")
    result = runner.invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "--workers 2 needs PostgreSQL" in result.output
    assert "one process write at a time" in result.output
    assert not database.exists()  # refused before anything was started or migrated


def test_serve_help_says_more_workers_need_postgresql() -> None:
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--workers" in result.output
    assert "More than 1 needs PostgreSQL" in result.output


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    try:
        with scratch_database("postgresql", workdir=tmp_path, postgres_url=POSTGRES_URL) as url:
            yield url
    except DatabaseUnavailable as error:
        pytest.skip(f"PostgreSQL not reachable at {error.url} ({error.reason})")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # Fields after the command name: state, then the parent's pid.
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="counts processes through /proc")
def test_serve_with_two_workers_on_postgresql_answers_from_two_processes(
    postgres_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    env = {**os.environ, "FHIRBRIDGE_DATABASE_URL": postgres_url}
    command = [str(FHIRBRIDGE), "serve", "--workers", "2", "--port", str(port)]
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        answered = _wait_for_health(server, f"http://127.0.0.1:{port}/health")
        assert answered == 200, (tmp_path / "serve.log").read_text(errors="replace")
        # uvicorn's supervisor spawns one process per worker (and multiprocessing may add its
        # resource tracker, which serves nothing).
        workers = [child for child in _children(server.pid) if "spawn_main" in _cmdline(child)]
        assert len(workers) == 2
    finally:
        server.terminate()
        try:
            server.wait(timeout=GIVE_UP_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _wait_for_health(server: subprocess.Popen[bytes], url: str) -> int | None:
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            return httpx.get(url, timeout=2).status_code
        except httpx.TransportError:
            time.sleep(0.2)
    return None


def test_serve_logs_each_request_by_route_template_never_by_the_path_sent(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "FHIRBRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}"}
    command = [str(FHIRBRIDGE), "serve", "--port", str(port)]
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert _wait_for_health(server, f"http://127.0.0.1:{port}/health") == 200
        httpx.get(f"http://127.0.0.1:{port}/patients/pat-marker-4711/time-entries", timeout=5)
    finally:
        server.terminate()
        server.wait(timeout=GIVE_UP_SECONDS)
    output = log_path.read_text(errors="replace")
    assert "GET /patients/{patient_id}/time-entries 401" in output
    assert "pat-marker-4711" not in output
