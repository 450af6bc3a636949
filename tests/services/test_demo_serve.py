"""`fhirbridge demo --serve`: after the demo, the web app and the API stay up on the demo's data
with the development sign-in, until Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

READY = re.compile(r"Web app: (http://127\.0\.0\.1:\d+/app/)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with _demo_serving(tmp_path_factory.mktemp("demo-serve")) as running:
        yield running


@contextmanager
def _demo_serving(folder: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    log = folder / "out.txt"
    env = {**os.environ, "COLUMNS": "200"}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fhirbridge.cli", "demo", "--serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    try:
        url = _wait_for_url(process, log)
        _wait_until_answering(url)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_for_url(process: subprocess.Popen[str], log: Path) -> str:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        found = READY.search(log.read_text())
        if found:
            return found.group(1)
        if process.poll() is not None:
            pytest.fail(f"demo --serve ended early:\n{log.read_text()}")
        time.sleep(0.5)
    pytest.fail(f"demo --serve printed no URL:\n{log.read_text()}")


def _wait_until_answering(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url.replace("/app/", "/health"), timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)


def test_the_sign_in_page_offers_the_development_sign_in(
    served: tuple[str, subprocess.Popen[str]],
) -> None:
    url, _ = served
    page = httpx.get(url + "sign-in", timeout=10)
    assert page.status_code == 200
    assert "development sign-in" in page.text.lower()


def test_the_app_asks_for_sign_in_before_showing_the_demo_data(
    served: tuple[str, subprocess.Popen[str]],
) -> None:
    url, _ = served
    response = httpx.get(url + "worklist", timeout=10)
    assert response.status_code == 303
    assert "/app/sign-in" in response.headers["location"]


def test_ctrl_c_stops_the_served_demo(tmp_path: Path) -> None:
    with _demo_serving(tmp_path) as (url, process):
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        with pytest.raises(httpx.TransportError):
            httpx.get(url, timeout=2)
