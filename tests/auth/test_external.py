"""`FICUS_AUTH=external`: JWT access tokens from another OpenID provider, verified with its JWKS."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.testclient import TestClient
from tests.auth.conftest import BASE, ISSUER
from tests.auth.harness import JSON, smart_app

from ficus.auth.service import ExternalAuth, create_authenticator
from ficus.auth.settings import AuthSettings
from ficus.config import Settings

PROVIDER = "https://idp.example.org/realms/ficus"
JWKS_URL = f"{PROVIDER}/protocol/openid-connect/certs"


class Provider:
    """A stand-in identity provider: a key, its JWKS, and tokens signed with it."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"alg": "RS256"}, auto_kid=True)
        self.fetches = 0

    def jwks(self, url: str) -> dict:
        assert url == JWKS_URL
        self.fetches += 1
        return {"keys": [self.key.as_dict(private=False)]}

    def token(self, **claims: object) -> str:
        now = int(time.time())
        body = {"iss": PROVIDER, "aud": BASE, "sub": "u1", "exp": now + 300, "iat": now, "scope": "user/*.rs", **claims}
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, body, self.key)


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
def external_client(fhir_settings: Settings, provider: Provider) -> Iterator[TestClient]:
    settings = AuthSettings(base_url=BASE, mode="external", external_issuer=PROVIDER, external_jwks_url=JWKS_URL)
    with TestClient(smart_app(fhir_settings, ExternalAuth(settings, fetch=provider.jwks)), base_url=ISSUER) as client:
        yield client


def _get(client: TestClient, token: str, path: str = "Patient") -> int:
    return client.get(f"{BASE}/{path}", headers={"Authorization": f"Bearer {token}"}).status_code


def test_valid_tokens_are_accepted_and_scoped(external_client: TestClient, provider: Provider) -> None:
    assert _get(external_client, provider.token()) == 200
    writer = provider.token(scope="user/*.cruds")
    response = external_client.post(f"{BASE}/Patient", json={"resourceType": "Patient"}, headers={**JSON, "Authorization": f"Bearer {writer}"})
    assert response.status_code == 201
    reader = provider.token()
    response = external_client.post(f"{BASE}/Patient", json={"resourceType": "Patient"}, headers={**JSON, "Authorization": f"Bearer {reader}"})
    assert response.status_code == 403
    assert _get(external_client, provider.token(scope=None, scp=["user/Patient.rs"])) == 200


@pytest.mark.parametrize("claims", [{"aud": "https://other.example/fhir"}, {"iss": "https://evil.example"}, {"exp": int(time.time()) - 600}])
def test_wrong_audience_issuer_or_expired_is_401(external_client: TestClient, provider: Provider, claims: dict) -> None:
    assert _get(external_client, provider.token(**claims)) == 401


def test_a_token_of_another_key_is_401(external_client: TestClient, provider: Provider) -> None:
    other = RSAKey.generate_key(2048, parameters={"alg": "RS256"}, auto_kid=True)
    forged = jwt.encode({"alg": "RS256", "kid": provider.key.kid}, {"iss": PROVIDER, "aud": BASE, "exp": int(time.time()) + 60, "scope": "user/*.rs"}, other)
    assert _get(external_client, forged) == 401


def test_unknown_kid_refetches_after_the_cool_down(fhir_settings: Settings, provider: Provider) -> None:
    clock = [1000.0]
    settings = AuthSettings(base_url=BASE, mode="external", external_issuer=PROVIDER, external_jwks_url=JWKS_URL)
    auth = ExternalAuth(settings, fetch=provider.jwks, clock=lambda: clock[0])
    assert auth.caller(f"Bearer {provider.token(patient='p1')}").patient == "p1"
    provider.key = RSAKey.generate_key(2048, parameters={"alg": "RS256"}, auto_kid=True)
    clock[0] += 45
    assert auth.caller(f"Bearer {provider.token()}").subject == "u1"
    assert provider.fetches == 2


def test_settings_for_external_need_issuer_and_jwks() -> None:
    with pytest.raises(ValueError, match="FICUS_AUTH_EXTERNAL_ISSUER"):
        AuthSettings(base_url=BASE, mode="external")



def test_off_says_loudly_that_the_server_is_open(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="ficus.auth"):
        assert create_authenticator(AuthSettings(base_url=BASE, mode="off")) is None
    assert "FICUS_AUTH=off" in caplog.text and "OPEN" in caplog.text
