"""The OAuth 2.0 / OpenID Connect core of the SMART authorization server, built on Authlib.

Authlib supplies the protocol logic (authorization code grant with PKCE, refresh token grant,
client credentials, RFC 7523 client assertions, RFC 7009 revocation, RFC 7662 introspection,
OpenID Connect id tokens); this module binds it to the auth tables and adds what SMART App
Launch asks for on top: S256 only, `aud` equal to the FHIR base URL, launch contexts,
`system/` scopes only for client credentials, refresh tokens only for `offline_access` /
`online_access`, rotation of refresh tokens with reuse detection, and RS384/ES384 client
assertions (Authlib accepts only joserfc's "recommended" algorithms unless told otherwise).

Tokens: access and refresh tokens are opaque 256-bit random strings; the database keeps only
their SHA-256. Ficus runs as several processes over one PostgreSQL and must honour revocation,
refresh rotation and code reuse at once everywhere, so every use of a token has to consult the
database anyway - a self-contained JWT would add signature checks and expose the launch
context to the client without saving that lookup. Id tokens are JWTs (RS256), as OpenID
Connect requires, signed with the rotatable keys of `ficus.auth.keys`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    AccessDeniedError,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Payload,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import OpenIDCode, UserInfo
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ficus.auth import scopes
from ficus.auth.crypto import digest, new_secret
from ficus.auth.keys import ALGORITHM, SigningKeys
from ficus.auth.models import MICROS, AuthorizationCode, Client, Token, User
from ficus.auth.settings import AuthSettings
from ficus.auth.store import AuthStore, LaunchContext, PendingRequest
from ficus.fhirtime import now_micros

# Client assertion algorithms: SMART Backend Services requires RS384 and ES384.
ASSERTION_ALGORITHMS = ["RS384", "ES384", "RS256", "ES256", "RS512", "ES512"]
TOKEN_AUTH_METHODS = ["private_key_jwt", "client_secret_basic", "client_secret_post", "none"]
BACKEND_AUTH_METHODS = ["private_key_jwt", "client_secret_basic", "client_secret_post"]

JwksFetcher = Callable[[str], dict]


# -- the Starlette side of Authlib's request model ----------------------------------------------

class _Payload(OAuth2Payload):
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._data: dict[str, str] = {}
        self._datalist: dict[str, list[str]] = {}
        for key, value in pairs:
            self._data.setdefault(key, value)
            self._datalist.setdefault(key, []).append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:  # type: ignore[override]
        return self._datalist


class FormRequest(OAuth2Request):
    """An OAuth request from its query and form pairs (read by the Starlette handlers).

    `uri` is the endpoint's public URL under the issuer: Authlib refuses plain `http` except on
    loopback hosts, which is the transport rule Ficus wants too (AUTHLIB_INSECURE_TRANSPORT=1
    lifts it for development behind other hosts).
    """

    def __init__(
        self, method: str, uri: str, headers: Mapping[str, str], query: list[tuple[str, str]],
        form: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(method, uri, headers=headers)
        form = form or []
        self._args = dict(query)
        self._form = dict(form)
        self.payload = _Payload(list(query) + list(form))
        self.pending: PendingRequest | None = None
        self.launch_context: LaunchContext | None = None

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


# -- the server -----------------------------------------------------------------------------------

class FicusAuthorizationServer(AuthorizationServer):
    """Authlib's authorization server over the auth tables; responses are (status, body, headers)."""

    def __init__(self, settings: AuthSettings, store: AuthStore, keys: SigningKeys, fetch_jwks: JwksFetcher) -> None:
        super().__init__()
        self.settings = settings
        self.store = store
        self.keys = keys
        self.fetch_jwks = fetch_jwks
        self.register_token_generator("default", self._generate_token)
        self.register_client_auth_method("private_key_jwt", PrivateKeyJWT(self))
        self.register_grant(SmartCodeGrant, [CodeChallenge(required=True), SmartIdToken(self)])
        self.register_grant(RotatingRefreshGrant)
        self.register_grant(BackendServicesGrant)
        self.register_endpoint(Revocation(self))
        self.register_endpoint(Introspection(self))

    def query_client(self, client_id: str) -> Client | None:
        if not isinstance(client_id, str):
            return None
        client = self.store.client(client_id)
        return client if client is not None and client.active else None

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if not isinstance(request, OAuth2Request):
            raise TypeError("Ficus builds its OAuth requests itself (FormRequest)")
        return request

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("No JSON endpoints")

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, list(headers or [])

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def _generate_token(
        self, grant_type: str, client: Client, user: User | None = None, scope: str | None = None,
        expires_in: int | None = None, include_refresh_token: bool = True,
    ) -> dict:
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": new_secret(),
            "expires_in": expires_in or self.settings.access_token_seconds,
            "scope": scope or "",
        }
        if include_refresh_token and user is not None and scopes.wants_refresh(scope) and client.check_grant_type("refresh_token"):
            token["refresh_token"] = new_secret()
        return token

    def save_token(self, token: dict, request: OAuth2Request) -> None:
        """Store the tokens (hashed) and add the SMART launch context to the response."""
        client: Client = request.client
        now = now_micros()
        code: AuthorizationCode | None = request.authorization_code
        previous: Token | None = request.refresh_token
        if code is not None:
            grant_id, username, context = code.grant_id, code.username, dict(code.context)
        elif previous is not None:
            grant_id, username, context = previous.grant_id, previous.username, dict(previous.context)
        else:
            grant_id, username, context = uuid.uuid4().hex, None, {}
        scope = token.get("scope", "")
        rows = [Token(
            digest(token["access_token"]), "access", grant_id, client.client_id, username, scope, context,
            now, now + int(token["expires_in"]) * MICROS,
        )]
        refresh = token.get("refresh_token")
        if refresh:
            lifetime = self.settings.offline_refresh_seconds if scopes.wants_refresh(scope) == "offline_access" else self.settings.online_refresh_seconds
            rows.append(Token(digest(refresh), "refresh", grant_id, client.client_id, username, scope, context, now, now + lifetime * MICROS))
        self.store.add_tokens(rows)
        for name in ("patient", "encounter"):
            if context.get(name):
                token[name] = context[name]
        if "need_patient_banner" in context:
            token["need_patient_banner"] = context["need_patient_banner"]


# -- grants ---------------------------------------------------------------------------------------

class SmartCodeGrant(AuthorizationCodeGrant):
    """Authorization code with PKCE (S256 only), `aud`, launch contexts and patient/user scopes."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    server: FicusAuthorizationServer

    def validate_authorization_request(self) -> str:
        redirect_uri = super().validate_authorization_request()
        request: FormRequest = self.request  # type: ignore[assignment]
        data = request.payload.data
        state = data.get("state")
        if not data.get("redirect_uri"):
            raise InvalidRequestError("SMART requires the 'redirect_uri' parameter")

        def fail(error: type, description: str) -> Exception:
            return error(description, redirect_uri=redirect_uri, state=state)

        if not state:
            raise fail(InvalidRequestError, "SMART requires the 'state' parameter")
        aud = (data.get("aud") or "").rstrip("/")
        if aud != self.server.settings.base_url:
            raise fail(InvalidRequestError, "The 'aud' parameter must be this server's FHIR base URL")
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise fail(InvalidRequestError, "PKCE is required: send code_challenge with code_challenge_method=S256")
        granted = [name for name in scopes.split_scope(request.scope) if not _level(name, "system")]
        if not granted:
            raise fail(InvalidScopeError, "None of the requested scopes is available to this client")
        request.scope = scopes.join_scope(granted)
        launch = data.get("launch")
        if launch or "launch" in granted:
            if not launch or "launch" not in granted:
                raise fail(InvalidRequestError, "An EHR launch needs both the 'launch' parameter and the 'launch' scope")
            context = self.server.store.launch(digest(launch))
            if context is None or (context.client_id and context.client_id != request.client.client_id):
                raise fail(InvalidRequestError, "The launch is unknown or expired")
            request.launch_context = context
        return redirect_uri

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        pending: PendingRequest | None = getattr(request, "pending", None)
        if pending is None or pending.username is None:
            raise AccessDeniedError()
        user: User = request.user
        granted = set(scopes.split_scope(request.scope))
        context: dict[str, Any] = {}
        if pending.patient and granted & {"launch", "launch/patient"}:
            context["patient"] = pending.patient
        if pending.encounter and granted & {"launch", "launch/encounter"}:
            context["encounter"] = pending.encounter
        if "patient" in context:
            context["need_patient_banner"] = not pending.launch_bound
        if user.fhir_user:
            context["fhirUser"] = user.fhir_user
        data = request.payload.data
        now = now_micros()
        self.server.store.add_code(AuthorizationCode(
            code_hash=digest(code), grant_id=uuid.uuid4().hex, client_id=request.client.client_id,
            username=user.username, redirect_uri=data.get("redirect_uri"), scope=request.scope,
            code_challenge=data.get("code_challenge"), code_challenge_method=data.get("code_challenge_method"),
            nonce=data.get("nonce"), auth_time=(pending.auth_time or now) // MICROS, context=context,
            created=now, expires=now + self.server.settings.code_seconds * MICROS,
        ))

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        """The stored code, used up by this call: a second use revokes what the first one got."""
        store = self.server.store
        found = store.code(digest(code))
        if found is None or found.client_id != client.client_id:
            return None
        if not store.use_code(found.code_hash):
            store.revoke_grant(found.grant_id)
            return None
        return None if found.is_expired() else found

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        pass  # used up in query_authorization_code, atomically

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        user = self.server.store.user(authorization_code.username)
        return user if user is not None and user.active else None


class RotatingRefreshGrant(RefreshTokenGrant):
    """Refresh tokens rotate: each use returns a new one; reusing an old one ends the grant."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: FicusAuthorizationServer

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        store = self.server.store
        token = store.token(digest(refresh_token), "refresh")
        if token is None:
            return None
        if token.rotated:
            store.revoke_grant(token.grant_id)  # a replayed refresh token: someone holds a copy
            return None
        if token.revoked or token.is_expired():
            return None
        return token

    def _validate_token_scope(self, token: Token) -> None:
        requested = self.request.payload.scope
        if requested and not scopes.covered(requested, token.get_scope()):
            raise InvalidScopeError("A refresh may narrow the granted scopes, never widen them")

    def authenticate_user(self, refresh_token: Token) -> User | None:
        user = self.server.store.user(refresh_token.username) if refresh_token.username else None
        return user if user is not None and user.active else None

    def create_token_response(self) -> Any:
        token: Token = self.request.refresh_token
        if not self.server.store.rotate_refresh_token(token.token_hash):
            self.server.store.revoke_grant(token.grant_id)
            raise InvalidGrantError("The refresh token was already used")
        return super().create_token_response()

    def revoke_old_credential(self, refresh_token: Token) -> None:
        pass  # rotated before the new tokens were issued


class BackendServicesGrant(ClientCredentialsGrant):
    """SMART Backend Services: client credentials (normally `private_key_jwt`) for `system/` scopes."""

    TOKEN_ENDPOINT_AUTH_METHODS = BACKEND_AUTH_METHODS

    def validate_token_request(self) -> None:
        super().validate_token_request()
        client: Client = self.request.client
        allowed = client.get_allowed_scope(self.request.payload.scope)
        granted = [name for name in scopes.split_scope(allowed) if _level(name, "system")]
        if not granted:
            raise InvalidScopeError("Backend services may only be granted system/ scopes this client is registered for")
        self.request.scope = scopes.join_scope(granted)

    def create_token_response(self) -> Any:
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


# -- client authentication with signed assertions --------------------------------------------------

class PrivateKeyJWT(JWTBearerClientAssertion):
    """`private_key_jwt` (RFC 7523) with the SMART rules: RS384/ES384, `jti` once, exp <= 5 minutes."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, server: FicusAuthorizationServer) -> None:
        super().__init__(validate_jti=True, leeway=60)
        self.server = server

    def get_audiences(self) -> list[str]:
        settings = self.server.settings
        return [settings.endpoint("token"), settings.issuer, settings.endpoint("revoke"), settings.endpoint("introspect")]

    def resolve_client_public_key(self, client: Client) -> KeySet:
        if client.jwks:
            return KeySet.import_key_set(client.jwks)
        if client.jwks_url:
            try:
                return KeySet.import_key_set(self.server.fetch_jwks(client.jwks_url))
            except Exception as error:
                raise InvalidClientError(description="The client's JWKS URL could not be read") from error
        raise InvalidClientError(description="The client has no registered keys")

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGORITHMS)
        except JoseError as error:
            raise InvalidClientError(description=_ascii(error.description or error.error)) from error
        except ValueError as error:
            raise InvalidClientError(description="The client assertion cannot be verified") from error
        exp = token.claims.get("exp")
        if isinstance(exp, (int, float)) and exp > time.time() + self.server.settings.assertion_max_seconds + self.leeway:
            raise InvalidClientError(description="The client assertion expires too late (at most 5 minutes ahead)")
        self.verify_claims(token.claims)
        return token.claims

    def validate_jti(self, claims: dict, jti: Any) -> bool:
        if not isinstance(jti, str) or not jti:
            return False
        expires = int((float(claims["exp"]) + self.leeway) * MICROS)
        return self.server.store.remember_jti(str(claims["sub"]), jti, expires)


# -- OpenID Connect ---------------------------------------------------------------------------------

class SmartIdToken(OpenIDCode):
    """Id tokens (RS256, with `fhirUser`) for `openid` requests of the code grant."""

    def __init__(self, server: FicusAuthorizationServer) -> None:
        super().__init__(require_nonce=False)
        self.server = server

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return self.server.store.nonce_used(request.payload.client_id, nonce)

    def resolve_client_private_key(self, client: Client) -> Any:
        return self.server.keys.current()[1]

    def get_client_algorithm(self, client: Client) -> str:
        return ALGORITHM

    def get_encode_header(self, client: Client) -> dict:
        stored, _ = self.server.keys.current()
        return {"alg": ALGORITHM, "kid": stored.kid}

    def get_client_claims(self, client: Client) -> dict:
        return {
            "iss": self.server.settings.issuer,
            "aud": [client.get_client_id()],
            "exp": int(time.time()) + self.server.settings.id_token_seconds,
        }

    def generate_user_info(self, user: User, scope: str) -> UserInfo:
        names = set(scopes.split_scope(scope))
        info = UserInfo(sub=user.username)
        if "fhirUser" in names and user.fhir_user:
            info["fhirUser"] = f"{self.server.settings.base_url}/{user.fhir_user}"
        if "profile" in names and user.display_name:
            info["name"] = user.display_name
        return info


# -- revocation and introspection ------------------------------------------------------------------

class Revocation(RevocationEndpoint):
    """RFC 7009: revoking a refresh token ends its whole grant; an access token only itself."""

    CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def __init__(self, server: FicusAuthorizationServer) -> None:
        super().__init__(server)
        self.store = server.store

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return self.store.token(digest(token_string))

    def revoke_token(self, token: Token, request: OAuth2Request) -> None:
        if token.kind == "refresh":
            self.store.revoke_grant(token.grant_id)
        else:
            self.store.revoke_token(token.token_hash)


class Introspection(IntrospectionEndpoint):
    """RFC 7662 with the SMART context; a client sees its own tokens, an introspector all."""

    CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def __init__(self, server: FicusAuthorizationServer) -> None:
        super().__init__(server)
        self.settings = server.settings
        self.store = server.store

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return self.store.token(digest(token_string))

    def check_permission(self, token: Token, client: Client, request: OAuth2Request) -> bool:
        return client.can_introspect or token.client_id == client.client_id

    def introspect_token(self, token: Token) -> dict:
        body: dict[str, Any] = {
            "active": True,
            "client_id": token.client_id,
            "scope": token.scope,
            "token_type": "Bearer" if token.kind == "access" else "refresh_token",
            "iat": token.issued // MICROS,
            "exp": token.expires // MICROS,
            "iss": self.settings.issuer,
            "aud": self.settings.base_url,
            "sub": token.username or token.client_id,
        }
        context = token.context
        for name in ("patient", "encounter"):
            if context.get(name):
                body[name] = context[name]
        if context.get("fhirUser"):
            body["fhirUser"] = f"{self.settings.base_url}/{context['fhirUser']}"
        return body


def _level(name: str, level: str) -> bool:
    parsed = scopes.parse_resource_scope(name)
    return parsed is not None and parsed.level == level


def _ascii(text: str) -> str:
    """An error description RFC 6749 allows (printable ASCII without quote and backslash)."""
    return "".join(c for c in text if 0x20 <= ord(c) <= 0x7E and c not in '"\\') or "invalid client assertion"
