"""AuthSettings: modes, the issuer derived from the FHIR base URL, the environment."""

from __future__ import annotations

import pytest

from ficus.auth.settings import AuthSettings, default_issuer


def test_issuer_defaults_to_the_base_url_without_fhir() -> None:
    assert default_issuer("http://127.0.0.1:8080/fhir") == "http://127.0.0.1:8080"
    assert default_issuer("https://ehr.example.org/ficus/fhir/") == "https://ehr.example.org/ficus"
    settings = AuthSettings(base_url="https://ehr.example.org/fhir/")
    assert settings.base_url == "https://ehr.example.org/fhir"
    assert settings.endpoint("token") == "https://ehr.example.org/auth/token"
    assert settings.secure_cookies


def test_from_environment() -> None:
    env = {"FICUS_AUTH_ISSUER": "https://auth.example.org/", "FICUS_AUTH_ACCESS_TOKEN_SECONDS": "600"}
    settings = AuthSettings.from_environment("https://ehr.example.org/fhir", "smart", env=env)
    assert settings.issuer == "https://auth.example.org" and settings.access_token_seconds == 600
    assert AuthSettings.from_environment("https://x/fhir", "smart", "https://given.example", env=env).issuer == "https://given.example"


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="FICUS_AUTH"):
        AuthSettings(base_url="http://localhost/fhir", mode="on")
