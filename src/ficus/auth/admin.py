"""Administration of the authorization server: clients, users, signing keys, EHR launches.

`AuthAdmin(database)` is the Python API; `ficus auth ...` (`ficus.auth.cli`) calls it. Secrets
are returned once, when they are made, and stored only as hashes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ficus.auth import scopes
from ficus.auth.crypto import digest, hash_password, new_secret
from ficus.auth.keys import SigningKeys
from ficus.auth.models import (
    ASYMMETRIC,
    CLIENT_KINDS,
    GRANT_TYPES,
    MICROS,
    PUBLIC,
    SYMMETRIC,
    Client,
    User,
)
from ficus.auth.store import AuthStore, LaunchContext, SigningKey
from ficus.fhirtime import now_micros
from ficus.store.database import Database

_FHIR_USER = re.compile(r"^(Practitioner|PractitionerRole|Patient|RelatedPerson|Person)/[A-Za-z0-9\-.]{1,64}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._~\-]{1,128}$")


class AdminError(ValueError):
    """A registration that cannot be made as asked (the message says why)."""


@dataclass(frozen=True)
class RegisteredClient:
    client: Client
    secret: str | None  # only for confidential-symmetric clients, shown once


class AuthAdmin:
    def __init__(self, database: Database) -> None:
        self.store = AuthStore(database)
        self.keys = SigningKeys(self.store)

    # -- clients ------------------------------------------------------------------------------

    def register_client(
        self, name: str, kind: str, redirect_uris: Iterable[str] = (), scope: str = "",
        grant_types: Iterable[str] | None = None, jwks: dict | None = None, jwks_url: str | None = None,
        client_id: str | None = None, can_introspect: bool = False,
    ) -> RegisteredClient:
        """Register an application; a confidential-symmetric one gets a new secret (returned once)."""
        if kind not in CLIENT_KINDS:
            raise AdminError(f"kind must be one of {', '.join(CLIENT_KINDS)}, not {kind!r}")
        client_id = client_id or uuid.uuid4().hex
        if not _CLIENT_ID.match(client_id):
            raise AdminError(f"{client_id!r} is not a usable client id (letters, digits, . _ ~ -)")
        if self.store.client(client_id) is not None:
            raise AdminError(f"A client with the id {client_id!r} exists already")
        grants = tuple(grant_types) if grant_types else _default_grants(kind, scope)
        unknown = [g for g in grants if g not in GRANT_TYPES]
        if unknown:
            raise AdminError(f"Unknown grant types: {', '.join(unknown)} (use {', '.join(GRANT_TYPES)})")
        if kind == PUBLIC and "client_credentials" in grants:
            raise AdminError("A public client cannot use client_credentials")
        uris = tuple(redirect_uris)
        if "authorization_code" in grants and not uris:
            raise AdminError("The authorization code grant needs at least one redirect URI")
        for uri in uris:
            if not uri.startswith(("https://", "http://")) or "#" in uri:
                raise AdminError(f"Redirect URI {uri!r} must be an absolute http(s) URL without a fragment")
        _check_scope(scope)
        if kind == ASYMMETRIC:
            if not jwks and not jwks_url:
                raise AdminError("A confidential-asymmetric client needs a JWKS or a JWKS URL")
            if jwks is not None:
                _check_jwks(jwks)
        elif jwks or jwks_url:
            raise AdminError("Only confidential-asymmetric clients have keys")
        secret = new_secret() if kind == SYMMETRIC else None
        client = Client(
            client_id=client_id, name=name, kind=kind, redirect_uris=uris, grant_types=grants, scope=scopes.join_scope(scopes.split_scope(scope)),
            secret_hash=digest(secret) if secret else None, jwks=jwks, jwks_url=jwks_url,
            can_introspect=can_introspect, created=now_micros(),
        )
        self.store.add_client(client)
        return RegisteredClient(client, secret)

    def clients(self) -> list[Client]:
        return self.store.clients()

    def client(self, client_id: str) -> Client:
        found = self.store.client(client_id)
        if found is None:
            raise AdminError(f"There is no client {client_id!r}")
        return found

    def new_client_secret(self, client_id: str) -> str:
        """Replace a confidential-symmetric client's secret (the old one stops working at once)."""
        if self.client(client_id).kind != SYMMETRIC:
            raise AdminError("Only confidential-symmetric clients have secrets")
        secret = new_secret()
        self.store.update_client(client_id, secret_hash=digest(secret))
        return secret

    def set_client_keys(self, client_id: str, jwks: dict | None = None, jwks_url: str | None = None) -> Client:
        if self.client(client_id).kind != ASYMMETRIC:
            raise AdminError("Only confidential-asymmetric clients have keys")
        if not jwks and not jwks_url:
            raise AdminError("Give a JWKS or a JWKS URL")
        if jwks is not None:
            _check_jwks(jwks)
        self.store.update_client(client_id, jwks=jwks, jwks_url=jwks_url)
        return self.client(client_id)

    def set_client_active(self, client_id: str, active: bool) -> None:
        """Enable or disable a client; disabling also revokes every token it holds."""
        self.client(client_id)
        self.store.update_client(client_id, active=active)
        if not active:
            self.store.revoke_client_tokens(client_id)

    def remove_client(self, client_id: str) -> None:
        """Delete a client and revoke every token it holds."""
        if not self.store.remove_client(client_id):
            raise AdminError(f"There is no client {client_id!r}")

    # -- users --------------------------------------------------------------------------------

    def add_user(self, username: str, password: str, fhir_user: str | None = None, display_name: str | None = None) -> User:
        if not username or len(username) > 128 or any(c.isspace() for c in username):
            raise AdminError("A user name is 1-128 characters without spaces")
        _check_password(password)
        _check_fhir_user(fhir_user)
        if self.store.user(username) is not None:
            raise AdminError(f"The user {username!r} exists already")
        user = User(username, hash_password(password), fhir_user, display_name, True, now_micros())
        self.store.add_user(user)
        return user

    def users(self) -> list[User]:
        return self.store.users()

    def set_password(self, username: str, password: str) -> None:
        """Change a password; the user's tokens are revoked."""
        _check_password(password)
        if not self.store.update_user(username, password_hash=hash_password(password)):
            raise AdminError(f"There is no user {username!r}")

    def set_fhir_user(self, username: str, fhir_user: str | None) -> None:
        _check_fhir_user(fhir_user)
        if not self.store.update_user(username, fhir_user=fhir_user):
            raise AdminError(f"There is no user {username!r}")

    def set_user_active(self, username: str, active: bool) -> None:
        if not self.store.update_user(username, active=active):
            raise AdminError(f"There is no user {username!r}")

    def remove_user(self, username: str) -> None:
        if not self.store.remove_user(username):
            raise AdminError(f"There is no user {username!r}")

    # -- signing keys -------------------------------------------------------------------------

    def signing_keys(self) -> list[SigningKey]:
        self.keys.current()
        return self.store.signing_keys()

    def rotate_key(self) -> SigningKey:
        return self.keys.rotate()

    def prune_keys(self, retention_seconds: int) -> list[str]:
        return self.keys.prune(retention_seconds)

    # -- EHR launch contexts ------------------------------------------------------------------

    def create_launch(
        self, patient: str | None = None, encounter: str | None = None, client_id: str | None = None, seconds: int = 3600,
    ) -> str:
        """Store a launch context and return the `launch` value to hand to the app."""
        if not patient and not encounter:
            raise AdminError("A launch context needs a patient or an encounter")
        if client_id is not None:
            self.client(client_id)
        launch = new_secret()
        self.store.add_launch(digest(launch), LaunchContext(client_id, patient, encounter, now_micros() + seconds * MICROS))
        return launch

    def purge(self) -> int:
        return self.store.purge_expired()


def _default_grants(kind: str, scope: str) -> tuple[str, ...]:
    has_system = any(s.level == "system" for s in scopes.resource_scopes(scope))
    if kind == ASYMMETRIC and has_system:
        return ("client_credentials",)
    return ("authorization_code", "refresh_token")


def _check_scope(scope: str) -> None:
    for name in scopes.split_scope(scope):
        if name.startswith(("patient/", "user/", "system/")) and scopes.parse_resource_scope(name) is None:
            raise AdminError(f"{name!r} is not a valid SMART scope")


def _check_jwks(jwks: dict) -> None:
    try:
        key_set = KeySet.import_key_set(jwks)
    except (JoseError, ValueError, KeyError, TypeError) as error:
        raise AdminError(f"The JWKS cannot be read: {error}") from error
    if any(key.is_private for key in key_set.keys):
        raise AdminError("The JWKS holds private keys; register only the public keys")


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise AdminError("A password needs at least 8 characters")


def _check_fhir_user(fhir_user: str | None) -> None:
    if fhir_user is not None and not _FHIR_USER.match(fhir_user):
        raise AdminError(f"fhirUser must be like Practitioner/123 or Patient/abc, not {fhir_user!r}")

