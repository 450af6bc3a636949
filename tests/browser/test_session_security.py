"""What the session cookie and the sign-in flow refuse, seen from a plain HTTP client."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from fhirbridge.api.auth import Principal, Role
from fhirbridge.config import Settings
from fhirbridge.web.session import decode_session, issue_session_cookie, safe_next

CARE_MANAGER = Principal(
    id="user:user-cm-north",
    roles=frozenset({Role.CARE_MANAGER}),
    team="north",
    staff_id="cm-north",
)


def test_a_session_signed_with_another_secret_is_sent_to_sign_in(
    app_url: str, settings: Settings
) -> None:
    other = settings.model_copy(update={"web_session_secret": SecretStr("another secret " * 4)})
    name, value = issue_session_cookie(other, CARE_MANAGER)

    with httpx.Client(cookies={name: value}) as client:
        answer = client.get(f"{app_url}/app/worklist")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/app/sign-in?next=/app/worklist"


def test_a_form_without_the_sessions_csrf_token_is_refused(
    app_url: str, settings: Settings
) -> None:
    name, value = issue_session_cookie(settings, CARE_MANAGER)

    with httpx.Client(cookies={name: value}) as client:
        answer = client.post(f"{app_url}/app/sign-out", data={"csrf_token": "guessed"})

    assert answer.status_code == 403


def test_a_form_with_the_sessions_csrf_token_is_accepted(app_url: str, settings: Settings) -> None:
    name, value = issue_session_cookie(settings, CARE_MANAGER)
    session = decode_session(settings, value)
    assert session is not None

    with httpx.Client(cookies={name: value}) as client:
        answer = client.post(f"{app_url}/app/sign-out", data={"csrf_token": session.csrf_token})

    assert answer.status_code == 303
    assert 'fhirbridge_session=""' in answer.headers["set-cookie"]


def test_the_sign_in_asks_for_a_code_with_pkce_s256_state_and_nonce(app_url: str) -> None:
    with httpx.Client() as client:
        answer = client.get(f"{app_url}/app/sign-in/start")

    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert answer.status_code == 303
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["state"][0]
    assert query["nonce"][0]


def test_a_sign_in_answer_for_another_state_is_refused(app_url: str) -> None:
    with httpx.Client() as client:
        client.get(f"{app_url}/app/sign-in/start")
        answer = client.get(
            f"{app_url}/app/sign-in/callback", params={"code": "stolen", "state": "other"}
        )

    assert answer.status_code == 400
    assert "fhirbridge_session" not in answer.headers.get("set-cookie", "")


def test_the_sign_in_does_not_send_the_user_to_another_site_afterwards(app_url: str) -> None:
    with httpx.Client() as client:
        page = client.get(f"{app_url}/app/sign-in", params={"next": "//evil.example/app"})

    assert "evil.example" not in page.text


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/app",
        "//evil.example/app",
        "/app\\@evil.example",
        "/app/\\evil.example",
        "/application",
        "/docs",
        "/app/\n",
    ],
)
def test_a_next_address_outside_the_app_falls_back_to_the_start_page(target: str) -> None:
    assert safe_next(target) == "/app"


def test_a_next_address_inside_the_app_is_kept() -> None:
    assert safe_next("/app/patients/pat-north-1?tab=time") == "/app/patients/pat-north-1?tab=time"
