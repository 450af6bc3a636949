"""The API served by a real uvicorn on 127.0.0.1 (a free port), in a thread of the test process:
what a client sees on the wire (keep-alive, a broken-off stream) and what the server itself logs
are only visible there, not through the in-process TestClient."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL."""
    # log_config=None: uvicorn logs through the logging set up already (the tests' capture).
    # access_log=False as `fhirbridge serve` runs it: the app logs its own access line.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


Send = Callable[[httpx.Client], httpx.Response]


def at_once(base_url: str, sends: list[Send], *, timeout: float = 60) -> list[httpx.Response]:
    """Send every request at once, each from its own thread over its own connection, held at a
    barrier until all are connected, so only the requests themselves race."""
    barrier = threading.Barrier(len(sends))

    def send(one: Send) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=timeout) as client:
            client.get("/health")
            barrier.wait(timeout=timeout)
            return one(client)

    with ThreadPoolExecutor(max_workers=len(sends)) as pool:
        return list(pool.map(send, sends))
