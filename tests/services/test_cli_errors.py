"""No command ends in a traceback: a FHIR server that is unreachable, silent or talks nonsense
is answered with one line on stderr naming the server and the cause, and exit code 4;
credentials that cannot be used, with exit code 3."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from fhirbridge.caseload import load_caseload
from fhirbridge.cli import app
from fhirbridge.commands.failures import server_of
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.localserver import free_port
from fhirbridge.persistence import Store, make_engine, unit_of_work
from fhirbridge.services.caseload import store_caseload
from tests.sessions import session_factory

runner = CliRunner()

Args = Callable[[str, Path], list[str]]
# Every command that talks to a FHIR server, given the server's base URL and a scratch folder.
SERVER_COMMANDS: dict[str, Args] = {
    "sync push": lambda url, _: ["sync", "push", "--once", "--fhir-url", url],
    "sync pull": lambda url, _: ["sync", "pull", "--fhir-url", url],
    "bulk export": lambda url, tmp: [
        "bulk",
        "export",
        "--out",
        str(tmp / "bulk"),
        "--fhir-url",
        url,
    ],
    "demo": lambda url, _: ["demo", "--fhir-url", url],
    "check-server": lambda url, _: ["check-server", url, "--timeout", "1"],
}


@pytest.fixture(autouse=True)
def impatient_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A database with the demo caseload waiting in the outbox; no retries, short timeouts."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FHIRBRIDGE_DATABASE_URL", url)
    monkeypatch.setenv("FHIRBRIDGE_FHIR_MAX_RETRIES", "0")
    monkeypatch.setenv("FHIRBRIDGE_FHIR_TIMEOUT_SECONDS", "0.5")
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    engine = make_engine(url)
    with unit_of_work(session_factory(engine)) as session:
        store_caseload(
            store=Store(session),
            caseload=load_caseload(PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml"),
        )
    engine.dispose()
    return url


@pytest.fixture
def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/fhir"


@pytest.fixture
def silent_server_url() -> Iterator[str]:
    """Listens (the kernel completes the handshake) but never accepts, so never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/fhir"


class _HtmlEverywhere(http.server.BaseHTTPRequestHandler):
    """A misconfigured reverse proxy: 200 and an HTML page, whatever was asked."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 (http.server's names)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def html_server_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HtmlEverywhere)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    server.shutdown()
    server.server_close()


def _one_error_line(result: Result) -> str:
    """The single line on stderr; no exception escaped the command."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("command", sorted(SERVER_COMMANDS))
def test_unreachable_server_is_one_line_naming_the_url_and_exit_code_4(
    command: str, closed_port_url: str, tmp_path: Path
) -> None:
    result = runner.invoke(app, SERVER_COMMANDS[command](closed_port_url, tmp_path))

    line = _one_error_line(result)
    assert line == f"error: cannot reach FHIR server {closed_port_url}: connection refused"
    assert result.exit_code == 4


@pytest.mark.parametrize("command", sorted(SERVER_COMMANDS))
def test_silent_server_is_one_line_naming_the_url_and_the_timeout(
    command: str, silent_server_url: str, tmp_path: Path
) -> None:
    result = runner.invoke(app, SERVER_COMMANDS[command](silent_server_url, tmp_path))

    line = _one_error_line(result)
    assert line.startswith(f"error: FHIR server {silent_server_url} did not answer within ")
    assert result.exit_code == 4


@pytest.mark.parametrize("command", sorted(SERVER_COMMANDS))
def test_server_answering_html_is_one_line_and_exit_code_4(
    command: str, html_server_url: str, tmp_path: Path
) -> None:
    result = runner.invoke(app, SERVER_COMMANDS[command](html_server_url, tmp_path))

    line = _one_error_line(result)
    assert line.startswith(f"error: FHIR server {html_server_url} ")
    assert result.exit_code == 4


def test_half_configured_credentials_are_one_line_naming_the_variable_and_exit_code_3(
    closed_port_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FHIRBRIDGE_FHIR_AUTH", "bearer")

    result = runner.invoke(app, ["sync", "pull", "--fhir-url", closed_port_url])

    line = _one_error_line(result)
    assert "FHIRBRIDGE_FHIR_TOKEN" in line
    assert result.exit_code == 3


def test_sync_pull_from_an_unreachable_server_prints_no_traceback_in_a_real_process(
    closed_port_url: str, impatient_settings: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fhirbridge.cli", "sync", "pull", "--fhir-url", closed_port_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 4
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: cannot reach FHIR server {closed_port_url}: connection refused"
    ]


@pytest.mark.parametrize(
    ("request_url", "server"),
    [
        ("http://127.0.0.1:9/fhir", "http://127.0.0.1:9/fhir"),
        ("http://127.0.0.1:9/fhir/metadata", "http://127.0.0.1:9/fhir"),
        ("http://127.0.0.1:9/fhir/Task?_lastUpdated=gt2026", "http://127.0.0.1:9/fhir"),
        ("http://127.0.0.1:9/fhir/Task/t1/_history/3", "http://127.0.0.1:9/fhir"),
        ("http://127.0.0.1:9/fhir/$export", "http://127.0.0.1:9/fhir"),
        ("https://ehr.example/api/r4/Patient/7", "https://ehr.example/api/r4"),
    ],
)
def test_an_error_names_the_fhir_base_url_of_the_failed_request(
    request_url: str, server: str
) -> None:
    assert server_of(request_url) == server
