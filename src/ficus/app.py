"""The ASGI application: `/fhir` on one raw ASGI endpoint, Starlette for the rest (auth pages).

Reads by id and version are answered on the event loop (`ficus.store.reads`); every other
interaction runs `Interactions.handle` in a worker thread, since it blocks on the database.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator
from urllib.parse import parse_qsl

import anyio
import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Match

from ficus import fhirjson
from ficus.api.exchange import FHIR_JSON, JSON_PATCH, FhirRequest, FhirResponse
from ficus.api.interactions import Interactions
from ficus.auth import AuthError, AuthSettings, create_authenticator
from ficus.auth.service import Authenticator
from ficus.config import Settings
from ficus.hl7v2.listener import listener_from_environment
from ficus.hl7v2.outbound.worker import outbound_from_environment
from ficus.outcome import FhirError, Issue, operation_outcome
from ficus.policy import Policy
from ficus.spec import definitions
from ficus.store.database import open_database
from ficus.store.reads import async_reads
from ficus.store.repository import Repository

log = logging.getLogger("ficus")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTENT_TYPE = f"{FHIR_JSON}; charset=utf-8"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_JSON_FORMATS = {"json", "application/json", FHIR_JSON, "application/json+fhir", "text/json"}
_XML_FORMATS = {"xml", "application/xml", "application/fhir+xml", "text/xml", "application/xml+fhir"}
_EXPOSED_HEADERS = ["Location", "Content-Location", "ETag", "Last-Modified", "WWW-Authenticate"]
_BODY_TYPES = {FHIR_JSON, "application/json", "application/json+fhir", JSON_PATCH, "application/x-www-form-urlencoded"}


def create_app(settings: Settings | None = None, policy: Policy | None = None, authenticator: Authenticator | None = None) -> ASGIApp:
    """The Ficus ASGI app for `settings`; `authenticator` replaces the one `settings.auth` names
    (tests build theirs with short lifetimes or a JWKS fetcher of their own)."""
    settings = settings or Settings.from_environment()
    state: dict[str, Any] = {}
    if authenticator is None:
        # None for FICUS_AUTH=off, which logs a loud warning that the server is open
        authenticator = create_authenticator(AuthSettings.from_environment(settings.base_url, settings.auth, settings.auth_issuer))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        database = open_database(settings.database_url, settings.database_pool_size)
        repository = Repository(database, definitions(), settings.base_url)
        chosen = policy or (authenticator.policy(repository.definitions) if authenticator else Policy())
        state["interactions"] = Interactions(settings, repository, chosen)
        state["reads"] = async_reads(database, settings.database_pool_size)
        state["bundles"] = anyio.CapacityLimiter(settings.bundle_concurrency)
        await state["reads"].open()
        if authenticator is not None:
            authenticator.start(database, repository)
        listener = listener_from_environment(state["interactions"], database)
        if listener:
            await listener.start()
        outbound = outbound_from_environment(repository, settings.base_url)
        if outbound:
            await outbound.start()
        try:
            yield
        finally:
            if outbound:
                await outbound.stop()
            if listener:
                await listener.stop()
            await state["reads"].close()
            database.close()

    routes = list(authenticator.routes()) if authenticator else []
    others = Starlette(routes=routes, lifespan=lifespan)
    return _with_cors(FicusApp(FhirEndpoint(settings, state, authenticator), others, routes), settings)


def _with_cors(app: ASGIApp, settings: Settings) -> ASGIApp:
    """CORS for browser apps on other origins (SMART apps): preflights, the Authorization
    header, and the response headers a FHIR client reads."""
    origins = settings.allowed_origins
    if not origins:
        return app
    return CORSMiddleware(
        app, allow_origins=origins, allow_methods=list(METHODS),
        allow_headers=["*"], expose_headers=_EXPOSED_HEADERS, max_age=600,
    )


class FicusApp:
    """`/fhir` and `/fhir/...` to the FHIR endpoint, except paths the other routes claim there
    (the SMART configuration); everything else, lifespan included, to Starlette."""

    def __init__(self, fhir: ASGIApp, others: ASGIApp, routes: list[BaseRoute]) -> None:
        self.fhir = fhir
        self.others = others
        self._claimed = [route for route in routes if getattr(route, "path", "").startswith("/fhir")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if (path == "/fhir" or path.startswith("/fhir/")) and not any(
                route.matches(scope)[0] is not Match.NONE for route in self._claimed
            ):
                await self.fhir(scope, receive, send)
                return
        await self.others(scope, receive, send)


class FhirEndpoint:
    """The FHIR RESTful API as a raw ASGI callable: negotiation, body limits, the caller, the
    interaction, and OperationOutcome errors."""

    def __init__(self, settings: Settings, state: dict[str, Any], authenticator: Any) -> None:
        self.settings = settings
        self.state = state
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        pretty = _last(query, "_pretty") == "true"
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        try:
            if method not in METHODS:
                raise FhirError.of(405, "not-supported", f"{method} is not a FHIR RESTful interaction")
            _negotiate(_last(query, "_format"), headers.get("accept"))
            body = b""
            if method in ("POST", "PUT", "PATCH"):
                _check_body_type(headers)
                body = await _read_body(receive, headers, self.settings.max_body_bytes)
            path = scope["path"][len("/fhir"):].strip("/")
            response = await self.respond(FhirRequest(method, path, query, headers, body), headers.get("authorization"))
        except AuthError as error:  # 401/403 with its WWW-Authenticate challenge (RFC 6750)
            response = FhirResponse(error.status, operation_outcome(error.issues), error.headers)
        except FhirError as error:
            response = FhirResponse(error.status, operation_outcome(error.issues))
        except RecursionError:
            response = FhirResponse(400, operation_outcome(fhirjson.too_deep().issues))
        except _Disconnected:
            return
        except Exception:  # noqa: BLE001 - the client gets an OperationOutcome, the log the trace
            log.exception("Unhandled error for %s %s", method, scope["path"])
            response = FhirResponse(500, operation_outcome([_internal_error()]))
        if method not in METHODS:
            response.headers["Allow"] = ", ".join(METHODS)
        status, raw_headers, content = _encoded(response, pretty, method == "HEAD")
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": content})

    async def respond(self, request: FhirRequest, authorization: str | None) -> FhirResponse:
        interactions: Interactions = self.state["interactions"]
        target = interactions.point_read(request)
        if target is None:
            if request.method == "POST" and request.path == "":
                # batch and transaction Bundles keep the cores busy in Python and in the database
                # alike: more at once than `bundle_concurrency` only adds contention, so they queue
                return await anyio.to_thread.run_sync(self._handle, request, authorization, limiter=self.state["bundles"])
            return await run_in_threadpool(self._handle, request, authorization)
        if self.authenticator is not None:
            # a token lookup may block on the database: only then is a worker thread worth it
            request.caller = (
                self.authenticator.caller(None) if authorization is None
                else await run_in_threadpool(self.authenticator.caller, authorization)
            )
        return await interactions.read_async(request, target, self.state["reads"])

    def _handle(self, request: FhirRequest, authorization: str | None) -> FhirResponse:
        if self.authenticator is not None:  # the token lookup runs in the interaction's worker thread
            request.caller = self.authenticator.caller(authorization)
        return self.state["interactions"].handle(request)


class _Disconnected(Exception):
    """The client went away before its request body arrived."""


def _internal_error() -> Issue:
    return Issue("fatal", "exception", "The server failed to process the request; the error was logged")


def _last(query: list[tuple[str, str]], name: str) -> str | None:
    found = None
    for key, value in query:
        if key == name:
            found = value
    return found


def _negotiate(wanted: str | None, accept: str | None) -> None:
    """JSON is served; an explicit request for XML or another format gets 406."""
    if wanted is not None:
        if wanted.split(";")[0].strip().lower() not in _JSON_FORMATS:
            raise FhirError.of(406, "not-supported", f"_format={wanted} is not supported; this server speaks JSON")
        return
    if not accept:
        return
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in _JSON_FORMATS or media in ("*/*", "application/*", "text/*", ""):
            return
    raise FhirError.of(406, "not-supported", f"Accept: {accept} cannot be served; this server speaks application/fhir+json")


def _check_body_type(headers: dict[str, str]) -> None:
    content_type = headers.get("content-type", FHIR_JSON).split(";")[0].strip().lower()
    if content_type in _XML_FORMATS:
        raise FhirError.of(415, "not-supported", "XML request bodies are not supported yet; send application/fhir+json")
    if content_type not in _BODY_TYPES:
        raise FhirError.of(415, "not-supported", f"Unsupported Content-Type {content_type!r}; send application/fhir+json")


async def _read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise FhirError.of(413, "too-costly", f"The body is larger than the {limit} bytes this server accepts")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise FhirError.of(413, "too-costly", f"The body is larger than the {limit} bytes this server accepts")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _encoded(response: FhirResponse, pretty: bool, head: bool) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, raw headers and body bytes of `response` (a HEAD answer keeps the length, not the body)."""
    body = response.body
    content = b""
    raw = []
    if body is not None:
        content = body if isinstance(body, bytes) else fhirjson.encode(body)
        if pretty:
            content = msgspec.json.format(content, indent=2)
        raw.append((b"content-type", CONTENT_TYPE.encode()))
    status = response.status
    if not (status < 200 or status in (204, 304)):
        raw.append((b"content-length", str(len(content)).encode()))
    raw.extend((key.lower().encode("latin-1"), value.encode("latin-1")) for key, value in response.headers.items())
    return status, raw, b"" if head else content
