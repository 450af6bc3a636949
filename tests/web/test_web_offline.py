"""/docs and the app serve every asset themselves: hospitals often run without internet
access. The vendored files are the ones VENDORED.md pins."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import fhirbridge.web

STATIC = Path(fhirbridge.web.__file__).parent / "static"
PINNED = re.findall(
    r"\| `([^`]+)` \|[^|]+\|[^|]+\| `([0-9a-f]{64})` \|", (STATIC / "VENDORED.md").read_text()
)
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)


def test_the_docs_page_references_no_other_host(client: TestClient) -> None:
    response = client.get("/docs")

    assert response.status_code == 200
    assert "swagger-ui-bundle.js" in response.text
    assert EXTERNAL.findall(response.text) == []
    assert re.findall(r"https?://", response.text) == []


def test_every_asset_the_docs_page_loads_is_served(client: TestClient) -> None:
    page = client.get("/docs").text
    assets = re.findall(r"""(?:src|href)=["'](/[^"']+)["']""", page)

    assert len(assets) >= 3
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_the_docs_page_still_reads_the_openapi_document(client: TestClient) -> None:
    assert "url: '/openapi.json'" in client.get("/docs").text
    assert client.get("/openapi.json").status_code == 200


def test_no_app_route_appears_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert [p for p in paths if p.startswith(("/app", "/docs"))] == []


@pytest.mark.parametrize(("name", "digest"), PINNED, ids=[n for n, _ in PINNED])
def test_a_vendored_asset_is_served_exactly_as_pinned(
    client: TestClient, name: str, digest: str
) -> None:
    response = client.get(f"/app/static/{name}")

    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == digest


def test_the_pins_cover_htmx_and_swagger_ui() -> None:
    assert {name for name, _ in PINNED} >= {
        "htmx.min.js",
        "swagger/swagger-ui-bundle.js",
        "swagger/swagger-ui.css",
    }
