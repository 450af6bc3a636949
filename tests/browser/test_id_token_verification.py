"""The checks an ID token passes before anyone is signed in with it (no browser needed: the
tokens are signed here with keys made for the test, the provider's keys being out of reach)."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from jwt import PyJWK

from fhirbridge.web.signin import SignInFailed, _verify_id_token
from tests.api.support import SigningKey, ec_key, rsa_key

ISSUER = "http://127.0.0.1:9/"
CLIENT = "fhirbridge-web"
NONCE = "the-nonce-of-this-sign-in"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return rsa_key("provider-key")


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CLIENT, "sub": "u1", "iat": now, "exp": now + 300}
    claims["nonce"] = NONCE
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(key: SigningKey, **changes: Any) -> str:
    return jwt.encode(
        _claims(**changes), key.private, algorithm=key.algorithm, headers={"kid": key.kid}
    )


def _verify(token: str, published: SigningKey) -> dict[str, Any]:
    keys = [PyJWK(published.public_jwk())]
    return _verify_id_token(token, keys, issuer=ISSUER, audience=CLIENT, nonce=NONCE, leeway=0)


def test_a_token_signed_by_the_providers_key_for_this_client_and_sign_in_is_accepted(
    key: SigningKey,
) -> None:
    assert _verify(_sign(key), key)["sub"] == "u1"


@pytest.mark.parametrize(
    "changes",
    [
        {"nonce": "the-nonce-of-another-sign-in"},
        {"nonce": None},
        {"aud": "another-client"},
        {"iss": "http://127.0.0.1:10/"},
        {"exp": int(time.time()) - 60},
    ],
    ids=["other-nonce", "no-nonce", "other-audience", "other-issuer", "expired"],
)
def test_a_token_for_another_sign_in_client_issuer_or_time_is_refused(
    key: SigningKey, changes: dict[str, Any]
) -> None:
    with pytest.raises(SignInFailed):
        _verify(_sign(key, **changes), key)


def test_a_token_signed_by_a_key_the_provider_does_not_publish_is_refused(
    key: SigningKey,
) -> None:
    impostor = rsa_key("provider-key")  # the same key id, another key

    with pytest.raises(SignInFailed, match="does not verify"):
        _verify(_sign(impostor), key)


def test_a_token_signed_with_an_algorithm_the_key_is_not_for_is_refused(key: SigningKey) -> None:
    other_kind = ec_key("provider-key")

    with pytest.raises(SignInFailed, match="unknown key"):
        _verify(_sign(other_kind), key)


def test_an_unsigned_token_is_refused(key: SigningKey) -> None:
    token = jwt.encode(_claims(), "", algorithm="none")

    with pytest.raises(SignInFailed, match="algorithm"):
        _verify(token, key)
