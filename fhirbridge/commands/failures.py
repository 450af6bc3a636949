"""The command line's error boundary: no command ends in a traceback.

A failure outside fhirbridge's control (a FHIR server that cannot be reached, answers too late
or answers nonsense; credentials it refuses; a database that cannot be opened) is caught once,
here, for every command, and printed as ONE line on stderr that names the server and the cause,
for example::

    error: cannot reach FHIR server http://127.0.0.1:9/fhir: connection refused

Exit codes (the README's command-line section lists them too):

    0  done
    1  work left undone: dead letters, open conflicts, records left out, required checks failed
    2  usage: a bad option or argument (Typer's own)
    3  credentials: refused by the server, or not fully configured
    4  a server (FHIR or database) unreachable, too slow, or misbehaving

Anything else is a bug in fhirbridge and keeps its traceback, so that it gets reported.
"""

from __future__ import annotations

import errno as errno_codes
import os
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import typer
from typer._click import ClickException
from typer._click.core import Context
from typer.core import TyperGroup

# Every command's group class, so `fhirbridge --help` loads this module too: the error classes
# ``explain`` knows are imported when there is an error to explain, not at start-up.
if TYPE_CHECKING:
    import httpx

    from fhirbridge.fhir import FhirError

__all__ = ["ExitCode", "FailsCleanly", "Failure", "explain", "server_of"]


class ExitCode(IntEnum):
    DONE = 0
    WORK_LEFT = 1
    USAGE = 2
    CREDENTIALS = 3
    SERVER = 4


@dataclass(frozen=True)
class Failure:
    code: ExitCode
    message: str  # one line, starting with "error: "


class FailsCleanly(TyperGroup):
    """A Typer group whose commands (and nested groups') answer the failures ``explain`` knows
    with one line and an exit code instead of a traceback. Installed on the root app, it
    covers every command; Typer carries its own copy of click, hence ``typer._click``."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, ClickException):
            raise
        except Exception as error:
            failure = explain(error)
            if failure is None:
                raise
            # A server's diagnostics may span lines; the answer stays one line.
            typer.echo(" ".join(failure.message.split()), err=True)
            raise typer.Exit(failure.code) from None


def explain(error: BaseException) -> Failure | None:
    """The one line and exit code for ``error``; None for an error that is a bug of ours."""
    import httpx
    from sqlalchemy.exc import OperationalError

    from fhirbridge.fhir import FhirError
    from fhirbridge.localserver import LocalServerError
    from fhirbridge.wiring import WiringError

    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            failure = explain(inner)
            if failure is not None:
                return failure
        return None
    if isinstance(error, WiringError):
        return Failure(ExitCode.CREDENTIALS, f"error: {error}")
    if isinstance(error, FhirError):
        return _fhir_failure(error)
    if isinstance(error, httpx.HTTPError):
        return Failure(ExitCode.SERVER, _unreachable(_url_of(error) or "the server", error))
    if isinstance(error, LocalServerError):
        return Failure(ExitCode.SERVER, f"error: the local FHIR server did not start: {error}")
    if isinstance(error, OperationalError):
        return Failure(ExitCode.SERVER, f"error: cannot use the database: {_first_line(error)}")
    return None


def _fhir_failure(error: FhirError) -> Failure:
    from fhirbridge.fhir import (
        Forbidden,
        MalformedResponse,
        StatusError,
        TransportError,
        Unauthorized,
    )

    server = server_of(error.request.url)
    if isinstance(error, Unauthorized | Forbidden):
        return Failure(
            ExitCode.CREDENTIALS,
            f"error: the FHIR server {server} refused our credentials: {_first_line(error)}",
        )
    if isinstance(error, TransportError):
        return Failure(ExitCode.SERVER, _unreachable(f"FHIR server {server}", error.__cause__))
    if isinstance(error, StatusError):
        return Failure(
            ExitCode.SERVER,
            f"error: FHIR server {server} answered HTTP {error.status} to "
            f"{error.request.method} {_path(error.request.redacted())}: {error.message}",
        )
    if isinstance(error, MalformedResponse):
        return Failure(
            ExitCode.SERVER,
            f"error: FHIR server {server} sent an answer fhirbridge cannot use: {error.message}",
        )
    return Failure(ExitCode.SERVER, f"error: FHIR server {server}: {_first_line(error)}")


def server_of(url: str) -> str:
    """The FHIR base URL of a request URL: the path up to the first resource type,
    ``metadata``, operation or ``_history`` segment; query and fragment dropped."""
    parts = urlsplit(url)
    kept: list[str] = []
    for segment in parts.path.split("/"):
        if segment == "metadata" or segment.startswith(("$", "_")) or segment[:1].isupper():
            break
        kept.append(segment)
    return urlunsplit((parts.scheme, parts.netloc, "/".join(kept).rstrip("/"), "", ""))


def _path(redacted_request: str) -> str:
    # "GET http://host/fhir/Task?x=…" -> "/fhir/Task?x=…": the server is already named.
    url = redacted_request.split(" ", 1)[-1]
    parts = urlsplit(url)
    return urlunsplit(("", "", parts.path, parts.query, ""))


def _unreachable(server: str, cause: BaseException | None) -> str:
    import httpx

    if isinstance(cause, httpx.TimeoutException) and not isinstance(cause, httpx.ConnectTimeout):
        seconds = _read_timeout(cause)
        within = f" within {seconds:g} s" if seconds else " in time"
        return f"error: {server} did not answer{within} (FHIRBRIDGE_FHIR_TIMEOUT_SECONDS)"
    return f"error: cannot reach {server}: {_cause(cause) if cause else 'no response'}"


def _cause(error: BaseException) -> str:
    import httpx

    if isinstance(error, httpx.ConnectTimeout):
        return "connection timed out"
    if isinstance(error, httpx.RemoteProtocolError):
        return "the server closed the connection without answering"
    errno = _errno(error)
    if errno is not None:
        return os.strerror(errno).lower()
    return _first_line(error) or type(error).__name__


def _read_timeout(error: httpx.TimeoutException) -> float | None:
    try:
        timeouts = error.request.extensions.get("timeout") or {}
    except RuntimeError:  # raised without a request
        return None
    read = timeouts.get("read")
    return float(read) if isinstance(read, int | float) else None


def _errno(error: BaseException) -> int | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno:
            return current.errno
        for arg in current.args:
            if isinstance(arg, OSError) and arg.errno:
                return arg.errno
        current = current.__cause__ or current.__context__
    text = str(error)
    return errno_codes.ECONNREFUSED if "Connection refused" in text else None


def _url_of(error: httpx.HTTPError) -> str | None:
    try:
        return server_of(str(error.request.url))
    except RuntimeError:  # raised without a request
        return None


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
