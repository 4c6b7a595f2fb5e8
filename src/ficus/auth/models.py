"""Clients, users, codes and tokens as Authlib's server components expect them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from authlib.oidc.core import AuthorizationCodeMixin

from ficus.auth import scopes
from ficus.auth.crypto import secret_matches
from ficus.fhirtime import now_micros

PUBLIC = "public"
SYMMETRIC = "confidential-symmetric"
ASYMMETRIC = "confidential-asymmetric"
CLIENT_KINDS = (PUBLIC, SYMMETRIC, ASYMMETRIC)
AUTH_METHODS = {
    PUBLIC: frozenset({"none"}),
    SYMMETRIC: frozenset({"client_secret_basic", "client_secret_post"}),
    ASYMMETRIC: frozenset({"private_key_jwt"}),
}
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
MICROS = 1_000_000


@dataclass(frozen=True)
class Client(ClientMixin):
    """A registered application."""

    client_id: str
    name: str
    kind: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scope: str
    secret_hash: str | None = None
    jwks: dict | None = None
    jwks_url: str | None = None
    can_introspect: bool = False
    active: bool = True
    created: int = 0

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scope cut down to the registration; None (invalid_scope) when nothing is left."""
        if not scope:
            return None
        granted = scopes.narrow(scope, self.scope)
        return scopes.join_scope(granted) if granted else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact match, as OAuth 2.1 requires

    def check_client_secret(self, client_secret: str) -> bool:
        return self.kind == SYMMETRIC and secret_matches(client_secret, self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return self.active and method in AUTH_METHODS[self.kind]

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return self.active and grant_type in self.grant_types

    def public_view(self) -> dict[str, Any]:
        """What administrators see (never a secret or its hash)."""
        return {
            "client_id": self.client_id, "name": self.name, "kind": self.kind,
            "redirect_uris": list(self.redirect_uris), "grant_types": list(self.grant_types), "scope": self.scope,
            "jwks_url": self.jwks_url, "jwks_keys": len((self.jwks or {}).get("keys", [])),
            "can_introspect": self.can_introspect, "active": self.active,
        }


@dataclass(frozen=True)
class User:
    """Someone who logs in at the authorization server; `fhir_user` is e.g. `Practitioner/123`."""

    username: str
    password_hash: str
    fhir_user: str | None = None
    display_name: str | None = None
    active: bool = True
    created: int = 0


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    code_hash: str
    grant_id: str
    client_id: str
    username: str
    redirect_uri: str | None
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    auth_time: int  # seconds since the epoch, as OpenID Connect wants it
    context: dict = field(default_factory=dict)
    used: bool = False
    created: int = 0
    expires: int = 0

    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def is_expired(self) -> bool:
        return now_micros() >= self.expires


@dataclass
class Token(TokenMixin):
    """An access or refresh token as stored (the token itself is only known to its holder)."""

    token_hash: str
    kind: str  # access | refresh
    grant_id: str
    client_id: str
    username: str | None
    scope: str
    context: dict
    issued: int
    expires: int
    revoked: bool = False
    rotated: bool = False

    def check_client(self, client: Client) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return (self.expires - self.issued) // MICROS

    def is_expired(self) -> bool:
        return now_micros() >= self.expires

    def is_revoked(self) -> bool:
        return self.revoked
