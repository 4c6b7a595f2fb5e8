"""The administration API over HTTP (`/auth/admin/...`): what `ficus auth` does, for an EHR or
an operator's tooling - register and remove clients, create EHR launch contexts, rotate the
signing key. Callers need an access token with unrestricted `system/*.cruds` (or `user/*.cruds`
of a user who is not a Patient), the same rule as the server's administrative operations.
Answers are JSON; a client secret is in the answer to its registration only.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ficus.auth.admin import AdminError, AuthAdmin
from ficus.auth.errors import AuthError
from ficus.auth.models import Client
from ficus.auth.policy import SmartPolicy

if TYPE_CHECKING:
    from ficus.auth.service import SmartAuth

BODY_LIMIT = 256 * 1024
_NO_STORE = {"Cache-Control": "no-store"}


class AdminApi:
    """The `/auth/admin` endpoints of one `SmartAuth`."""

    def __init__(self, auth: SmartAuth) -> None:
        self.auth = auth
        self.policy = SmartPolicy(base_url=auth.settings.base_url)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/auth/admin/clients", self.clients, methods=["GET", "POST"]),
            Route("/auth/admin/clients/{client_id}", self.client, methods=["GET", "DELETE"]),
            Route("/auth/admin/launches", self.launches, methods=["POST"]),
            Route("/auth/admin/keys", self.keys, methods=["GET", "POST"]),
        ]

    async def clients(self, request: Request) -> Response:
        if request.method == "GET":
            return await self._run(request, None, lambda admin, _: {"clients": [client_json(c) for c in admin.clients()]})
        return await self._run(request, await _body(request), _register, 201)

    async def client(self, request: Request) -> Response:
        client_id = request.path_params["client_id"]
        if request.method == "GET":
            return await self._run(request, None, lambda admin, _: client_json(admin.client(client_id)))

        def remove(admin: AuthAdmin, _: Any) -> None:
            admin.remove_client(client_id)

        return await self._run(request, None, remove, 204)

    async def launches(self, request: Request) -> Response:
        def create(admin: AuthAdmin, body: dict) -> dict:
            seconds = body.get("seconds", 3600)
            if not isinstance(seconds, int) or not 0 < seconds <= 24 * 3600:
                raise AdminError("seconds must be an integer from 1 to 86400")
            launch = admin.create_launch(_text(body, "patient"), _text(body, "encounter"), _text(body, "client_id"), seconds)
            return {"launch": launch, "expires_in": seconds}

        return await self._run(request, await _body(request), create, 201)

    async def keys(self, request: Request) -> Response:
        if request.method == "GET":
            return await self._run(request, None, lambda admin, _: {"keys": [_key_json(k) for k in admin.signing_keys()]})
        return await self._run(request, None, lambda admin, _: _key_json(admin.rotate_key()), 201)

    async def _run(self, request: Request, body: Any, action: Any, status: int = 200) -> Response:
        if isinstance(body, Response):
            return body
        authorization = request.headers.get("authorization")

        def work() -> Response:
            try:
                caller = self.auth.caller(authorization)
                self.policy.require_administrator(caller, "the administration API")
                answer = action(AuthAdmin(self.auth.store.database), body)
            except AuthError as error:
                return JSONResponse(_error(error.status, error.issues[0].diagnostics), error.status, headers={**error.headers, **_NO_STORE})
            except AdminError as error:
                status_code = 404 if "no client" in str(error).lower() or "unknown" in str(error).lower() else 400
                return JSONResponse(_error(status_code, str(error)), status_code, headers=_NO_STORE)
            if answer is None:
                return Response(status_code=status, headers=_NO_STORE)
            return JSONResponse(answer, status, headers=_NO_STORE)

        return await run_in_threadpool(work)


def _register(admin: AuthAdmin, body: dict) -> dict:
    grant_types = body.get("grant_types")
    if grant_types is not None and not _strings(grant_types):
        raise AdminError("grant_types must be a list of strings")
    redirect_uris = body.get("redirect_uris", [])
    if not _strings(redirect_uris):
        raise AdminError("redirect_uris must be a list of strings")
    jwks = body.get("jwks")
    if jwks is not None and not isinstance(jwks, dict):
        raise AdminError("jwks must be a JWK Set object")
    name, kind = _text(body, "name"), _text(body, "kind")
    if not name or not kind:
        raise AdminError("name and kind are required")
    registered = admin.register_client(
        name, kind, redirect_uris, _text(body, "scope") or "", grant_types, jwks, _text(body, "jwks_url"),
        _text(body, "client_id"), bool(body.get("can_introspect", False)),
    )
    answer = client_json(registered.client)
    if registered.secret:
        answer["client_secret"] = registered.secret
    return answer


def client_json(client: Client) -> dict:
    """A client as the API shows it: never its secret (only the hash is stored anyway)."""
    return {
        "client_id": client.client_id, "name": client.name, "kind": client.kind,
        "redirect_uris": list(client.redirect_uris), "grant_types": list(client.grant_types), "scope": client.scope,
        "jwks_url": client.jwks_url, "has_jwks": client.jwks is not None, "can_introspect": client.can_introspect,
        "active": client.active,
    }


def _key_json(key: Any) -> dict:
    return {"kid": key.kid, "created": key.created, "retired": key.retired}


def _text(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise AdminError(f"{name} must be a string")
    return value or None


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _error(status: int, message: str) -> dict:
    code = {401: "invalid_token", 403: "insufficient_scope", 404: "not_found"}.get(status, "invalid_request")
    return {"error": code, "error_description": message}


async def _body(request: Request) -> dict | Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        return JSONResponse(_error(415, "Send application/json"), 415, headers=_NO_STORE)
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > BODY_LIMIT:
            return JSONResponse(_error(413, "The body is too large"), 413, headers=_NO_STORE)
    try:
        body = json.loads(data or b"{}")
    except ValueError:
        return JSONResponse(_error(400, "The body is not JSON"), 400, headers=_NO_STORE)
    if not isinstance(body, dict):
        return JSONResponse(_error(400, "The body must be a JSON object"), 400, headers=_NO_STORE)
    return body
