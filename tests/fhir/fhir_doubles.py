"""Test doubles shared by the FHIR client tests (kept out of conftest so tests can import them)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

BASE = "http://fhir.test/fhir"


class RecordingSleep:
    """Stands in for asyncio.sleep: records each requested wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class CreatingServer:
    """Answers POST creates as a FHIR server would: ids in order, the resource echoed back."""

    def __init__(self) -> None:
        self.created = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.created += 1
        rid = f"id{self.created}"
        stored = {**body, "id": rid, "meta": {"versionId": "1"}}
        location = f"{BASE}/{body['resourceType']}/{rid}/_history/1"
        return httpx.Response(201, json=stored, headers={"Location": location})


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def write_rsa_key(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _write_pem(key, path)


def write_ec_key(path: Path, curve: ec.EllipticCurve | None = None) -> Path:
    key = ec.generate_private_key(curve or ec.SECP384R1())
    return _write_pem(key, path)


def _write_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


class RecordingTransport(httpx.AsyncBaseTransport):
    """The real network transport, noting the path and status of every exchange."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.exchanges: list[tuple[str, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        self.exchanges.append((request.url.path, response.status_code))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.exchanges if p == path)
