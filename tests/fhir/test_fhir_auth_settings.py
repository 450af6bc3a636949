"""Auth is chosen by configuration; secrets stay out of reprs and settings dumps."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx
from fhir_doubles import BASE, write_rsa_key
from pydantic import TypeAdapter

from fhirbridge.fhir import (
    AuthSettings,
    BasicAuthSettings,
    BearerAuthSettings,
    FhirClient,
    SmartAuthSettings,
    SmartBackendAuth,
    build_auth,
)

SETTINGS: TypeAdapter[AuthSettings] = TypeAdapter(AuthSettings)
TASK = {"resourceType": "Task", "id": "t1", "status": "requested", "intent": "order"}


def test_none_builds_no_auth() -> None:
    assert build_auth(SETTINGS.validate_python({"type": "none"}), base_url=BASE) is None


@pytest.mark.anyio
async def test_static_bearer_sends_the_token(
    router: respx.MockRouter, transport: httpx.MockTransport
) -> None:
    route = router.get("/Task/t1").mock(return_value=httpx.Response(200, json=TASK))
    auth = build_auth(
        SETTINGS.validate_python({"type": "bearer", "token": "s3cret"}), base_url=BASE
    )

    async with FhirClient(BASE, auth=auth, transport=transport) as fhir:
        await fhir.read("Task", "t1")

    assert route.calls.last.request.headers["Authorization"] == "Bearer s3cret"


@pytest.mark.anyio
async def test_basic_sends_username_and_password(
    router: respx.MockRouter, transport: httpx.MockTransport
) -> None:
    route = router.get("/Task/t1").mock(return_value=httpx.Response(200, json=TASK))
    settings = SETTINGS.validate_python({"type": "basic", "username": "u", "password": "p"})

    async with FhirClient(BASE, auth=build_auth(settings, base_url=BASE), transport=transport) as f:
        await f.read("Task", "t1")

    assert route.calls.last.request.headers["Authorization"] == "Basic dTpw"


def test_smart_settings_build_a_smart_backend_auth(tmp_path: Path) -> None:
    settings = SETTINGS.validate_python(
        {
            "type": "smart",
            "client_id": "c1",
            "private_key_path": str(write_rsa_key(tmp_path / "k.pem")),
            "kid": "k1",
        }
    )

    auth = build_auth(settings, base_url=BASE)

    assert isinstance(auth, SmartBackendAuth)
    assert (auth.client_id, auth.key.kid) == ("c1", "k1")


def test_smart_settings_need_exactly_one_key_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        build_auth(SmartAuthSettings(client_id="c1"), base_url=BASE)


def test_secrets_do_not_appear_in_settings_reprs_or_dumps() -> None:
    bearer = BearerAuthSettings(token="s3cret")
    basic = BasicAuthSettings(username="u", password="hunter2")

    shown = repr(bearer) + str(bearer.model_dump()) + repr(basic) + basic.model_dump_json()

    assert "s3cret" not in shown
    assert "hunter2" not in shown


def test_bearer_auth_repr_hides_the_token() -> None:
    auth = build_auth(BearerAuthSettings(token="s3cret"), base_url=BASE)

    assert "s3cret" not in repr(auth)
