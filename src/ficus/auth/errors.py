"""Authorization failures as FHIR errors that also carry an RFC 6750 `WWW-Authenticate` challenge."""

from __future__ import annotations

from dataclasses import dataclass

from ficus.outcome import FhirError, Issue

REALM = "ficus"


@dataclass
class AuthError(FhirError):
    """A 401 (no or bad token) or 403 (insufficient scope); `challenge` is the header value."""

    challenge: str = f'Bearer realm="{REALM}"'

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge}


def unauthenticated(message: str = "This request needs an access token (Authorization: Bearer ...)") -> AuthError:
    """No credentials at all: RFC 6750 §3.1 says the challenge carries no error code."""
    return AuthError(401, [Issue("error", "login", message)])


def invalid_token(message: str) -> AuthError:
    challenge = f'Bearer realm="{REALM}", error="invalid_token", error_description="{_quoted(message)}"'
    return AuthError(401, [Issue("error", "login", message)], challenge)


def invalid_request(message: str) -> AuthError:
    challenge = f'Bearer realm="{REALM}", error="invalid_request", error_description="{_quoted(message)}"'
    return AuthError(400, [Issue("error", "invalid", message)], challenge)


def insufficient_scope(message: str, needed: str | None = None) -> AuthError:
    challenge = f'Bearer realm="{REALM}", error="insufficient_scope"'
    if needed:
        challenge += f', scope="{_quoted(needed)}"'
    return AuthError(403, [Issue("error", "forbidden", message)], challenge)


def _quoted(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")
