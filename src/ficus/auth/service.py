"""`SmartAuth` and `ExternalAuth`: what `create_app` plugs in for `FICUS_AUTH=smart|external`.

Both answer the same three questions for the HTTP layer: which routes to mount (`routes()`),
which `Caller` an `Authorization` header stands for (`caller()`, blocking: call it in the worker
thread that handles the request), and which policy decides (`policy()`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.routing import BaseRoute

from ficus.auth.crypto import digest
from ficus.auth.errors import invalid_request, invalid_token
from ficus.auth.keys import SigningKeys
from ficus.auth.models import Token
from ficus.auth.policy import SmartPolicy
from ficus.auth.server import FicusAuthorizationServer, JwksFetcher
from ficus.auth.settings import AuthSettings
from ficus.auth.store import AuthStore
from ficus.policy import ANONYMOUS, Caller
from ficus.spec import Definitions
from ficus.store.database import Database

log = logging.getLogger("ficus.auth")
EXTERNAL_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"]


def fetch_jwks(url: str, limit: int = 256 * 1024) -> dict:
    """GET a JWKS document (client keys for `private_key_jwt`, or an external provider's keys)."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"{url!r} is not an http(s) URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "Ficus"})
    with urllib.request.urlopen(request, timeout=5) as response:
        data = response.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{url} returned more than {limit} bytes")
    body = json.loads(data)
    if isinstance(body, dict) and isinstance(body.get("keys"), list):
        return body
    raise ValueError(f"{url} does not hold a JWKS")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer ...` header; None without a header."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise invalid_request("The Authorization header must be 'Bearer <access token>'")
    return value.strip()


class SmartAuth:
    """The built-in SMART on FHIR authorization server."""

    def __init__(self, settings: AuthSettings, fetch: JwksFetcher = fetch_jwks) -> None:
        self.settings = settings
        self._fetch = fetch
        self._repository: Any = None
        self.store: AuthStore
        self.keys: SigningKeys
        self.server: FicusAuthorizationServer
        from ficus.auth.web import AuthWeb

        self.web = AuthWeb(self)

    def start(self, database: Database, repository: Any = None) -> None:
        """Bind to the opened database (and the FHIR repository, for the patient picker)."""
        self.store = AuthStore(database)
        self.keys = SigningKeys(self.store)
        self.server = FicusAuthorizationServer(self.settings, self.store, self.keys, self._fetch)
        self._repository = repository
        self.keys.current()  # every process agrees on a signing key before the first request
        self.store.purge_expired()

    def routes(self) -> list[BaseRoute]:
        from ficus.auth.admin_api import AdminApi

        return [*self.web.routes(), *AdminApi(self).routes()]

    def policy(self, definitions: Definitions | None = None) -> SmartPolicy:
        return SmartPolicy(definitions, self.settings.base_url)

    def caller(self, authorization: str | None) -> Caller:
        """The caller an `Authorization` header stands for; raises 401 for a bad token."""
        value = bearer_token(authorization)
        if value is None:
            return ANONYMOUS
        token = self.store.token(digest(value), "access")
        if token is None or token.is_revoked() or token.is_expired():
            raise invalid_token("The access token is unknown, expired or revoked")
        return caller_for(token)

    # -- the FHIR data the pages need ----------------------------------------------------------

    def find_patients(self, query: str | None, limit: int) -> list[Any]:
        """Patients for the picker: by name when `query` is given, else the most recent ones."""
        from ficus.auth.web import PatientChoice
        from ficus.fhirjson import decode
        from ficus.search import search_versions

        repository = self._repository
        if repository is None:
            return []
        pairs = [("name", query)] if query else [("_lastUpdated", "gt1900")]
        with repository.reading() as tx:
            versions, _ = search_versions(tx, repository.definitions, "Patient", pairs, limit, 0)
        choices = []
        for version in versions:
            resource = decode(version.content or b"{}")
            choices.append(PatientChoice(version.res_id, patient_label(resource)))
        return choices

    def patient_exists(self, patient_id: str) -> bool:
        from ficus.outcome import FhirError

        if self._repository is None:
            return False
        try:
            version = self._repository.read("Patient", patient_id)
        except FhirError:
            return False
        return not version.deleted


def caller_for(token: Token) -> Caller:
    """The `Caller` of an access token: subject is the fhirUser (else the user or client)."""
    context = token.context
    subject = context.get("fhirUser") or token.username
    return Caller(subject=subject, scopes=frozenset(token.scope.split()), patient=context.get("patient"), client_id=token.client_id)


def patient_label(resource: dict) -> str:
    names = resource.get("name") or []
    label = ""
    if names and isinstance(names[0], dict):
        name = names[0]
        label = name.get("text") or " ".join([*name.get("given", []), name.get("family", "")]).strip()
    birth = resource.get("birthDate")
    return f"{label or 'Unnamed patient'}{f' (born {birth})' if birth else ''}"


class ExternalAuth:
    """Accepts JWT access tokens issued by another OpenID Connect provider.

    The provider's JWKS is cached for five minutes and fetched again at once for an unknown
    `kid` (at most every 30 seconds), so its key rotations are picked up. Claims: `iss` and
    `aud` must match the configuration, `exp` must lie ahead; scopes come from `scope` (a
    string) or `scp` (a list), the patient context from the `patient` claim, the subject from
    `fhirUser` or `sub`, the client from `client_id` or `azp`.
    """

    def __init__(self, settings: AuthSettings, fetch: JwksFetcher = fetch_jwks, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._fetch = fetch
        self._clock = clock
        self._keys: KeySet | None = None
        self._fetched = 0.0
        self._lock = threading.Lock()

    def start(self, database: Database | None = None, repository: Any = None) -> None:
        pass

    def routes(self) -> list[BaseRoute]:
        return []

    def policy(self, definitions: Definitions | None = None) -> SmartPolicy:
        return SmartPolicy(definitions, self.settings.base_url)

    def caller(self, authorization: str | None) -> Caller:
        value = bearer_token(authorization)
        if value is None:
            return ANONYMOUS
        claims = self._verified_claims(value)
        settings = self.settings
        scope = claims.get(settings.external_scope_claim) or claims.get("scp") or ""
        names = scope.split() if isinstance(scope, str) else [str(s) for s in scope] if isinstance(scope, list) else []
        patient = claims.get(settings.external_patient_claim)
        fhir_user = claims.get("fhirUser")
        if isinstance(fhir_user, str) and fhir_user.startswith(settings.base_url + "/"):
            fhir_user = fhir_user[len(settings.base_url) + 1:]
        return Caller(
            subject=fhir_user if isinstance(fhir_user, str) else claims.get("sub"),
            scopes=frozenset(names), patient=patient if isinstance(patient, str) else None,
            client_id=claims.get("client_id") or claims.get("azp"),
        )

    def _verified_claims(self, value: str) -> dict:
        try:
            token = self._decode(value)
            registry = jwt.JWTClaimsRegistry(
                leeway=30, iss={"essential": True, "value": self.settings.external_issuer},
                aud={"essential": True, "value": self.settings.audience}, exp={"essential": True},
            )
            registry.validate(token.claims)
        except JoseError as error:
            raise invalid_token(f"The access token was rejected: {error.description or error.error}") from error
        except ValueError as error:
            raise invalid_token("The access token is not a valid JWT") from error
        return token.claims

    def _decode(self, value: str) -> Any:
        try:
            return jwt.decode(value, self._key_set(), algorithms=EXTERNAL_ALGORITHMS)
        except JoseError:
            if not self._refresh_allowed():
                raise
            return jwt.decode(value, self._key_set(force=True), algorithms=EXTERNAL_ALGORITHMS)

    def _refresh_allowed(self) -> bool:
        return self._clock() - self._fetched > 30

    def _key_set(self, force: bool = False) -> KeySet:
        with self._lock:
            if force or self._keys is None or self._clock() - self._fetched > 300:
                try:
                    self._keys = KeySet.import_key_set(self._fetch(self.settings.external_jwks_url or ""))
                except Exception as error:
                    log.error("Cannot read the external JWKS %s: %s", self.settings.external_jwks_url, error)
                    if self._keys is None:
                        raise invalid_token("The token issuer's keys are unavailable") from error
                self._fetched = self._clock()
            return self._keys


Authenticator = SmartAuth | ExternalAuth


def create_authenticator(settings: AuthSettings) -> Authenticator | None:
    """The authenticator for `settings.mode` (None for `off`, which also logs a loud warning)."""
    if settings.mode == "smart":
        return SmartAuth(settings)
    if settings.mode == "external":
        return ExternalAuth(settings)
    warn_open_server(settings.base_url)
    return None


def warn_open_server(base_url: str) -> None:
    banner = "!" * 78
    log.warning(
        "\n%s\n  FICUS_AUTH=off: %s is OPEN. Anyone who can reach it may read, change and delete\n"
        "  every resource. Use this only for development; set FICUS_AUTH=smart or external.\n%s",
        banner, base_url, banner,
    )
