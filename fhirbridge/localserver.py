"""Start and stop a local FHIR R4 server (sekmet-fhir) on loopback.

The demo and the integration tests need a real third-party FHIR server, not a fake one. sekmet
runs in its own process so that it can be killed and restarted (fault tests) and so that nothing
of ours leaks into it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

__all__ = ["LocalFhirServer", "LocalServerError", "free_port"]


class LocalServerError(RuntimeError):
    """The local FHIR server did not start or stopped unexpectedly."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sekmet_executable() -> str:
    beside_python = Path(sys.executable).with_name("sekmet")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("sekmet")
    if found is None:
        raise LocalServerError(
            "the 'sekmet' command (PyPI package sekmet-fhir) is not installed; "
            "install fhirbridge with the 'server' extra"
        )
    return found


@dataclass
class LocalFhirServer:
    """A sekmet FHIR server in a child process, with its data in ``workdir``.

    ``server_auth`` is passed through to sekmet's settings (e.g. SMART clients to register).
    The order simulator is off so that nothing changes on the server unless a test changes it.
    """

    workdir: Path
    port: int = field(default_factory=free_port)
    server_auth: dict[str, Any] | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    @property
    def settings_path(self) -> Path:
        return self.workdir / "settings.yaml"

    def _write_settings(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        settings: dict[str, Any] = {
            "base_url": self.base_url,
            "host": "127.0.0.1",
            "port": self.port,
            "data_dir": str(self.workdir / "data"),
            "own_private_key_path": str(self.workdir / "keys" / "sekmet_private.pem"),
            "simulator": {"enabled": False},
            "validation": {"inbound": "off"},
            "log_inbound": False,
        }
        if self.server_auth is not None:
            settings["server_auth"] = self.server_auth
        self.settings_path.write_text(yaml.safe_dump(settings, sort_keys=False))

    def start(self, *, timeout: float = 60.0) -> LocalFhirServer:
        if self._process is not None and self._process.poll() is None:
            return self
        self._write_settings()
        log = (self.workdir / "server.log").open("ab")
        env = {**os.environ, "SEKMET_CONFIG": str(self.settings_path)}
        self._process = subprocess.Popen(
            [
                _sekmet_executable(),
                "serve",
                "--config",
                str(self.settings_path),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise LocalServerError(
                    f"sekmet exited with {self._process.returncode}; see {self.workdir}/server.log"
                )
            try:
                if httpx.get(f"{self.base_url}/metadata", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise LocalServerError(f"sekmet did not answer on {self.base_url} within {timeout:.0f}s")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM, then SIGKILL after 10 s)."""
        self._signal(signal.SIGTERM, wait=10.0)

    def kill(self) -> None:
        """Die abruptly, as a crashed server would: in-flight requests get no response."""
        self._signal(signal.SIGKILL, wait=10.0)

    def _signal(self, sig: signal.Signals, *, wait: float) -> None:
        proc, self._process = self._process, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> LocalFhirServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
