"""The ASGI application: HTTP in, `Interactions` in a worker thread, FHIR JSON out."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ficus import fhirjson
from ficus.api.exchange import FHIR_JSON, JSON_PATCH, FhirRequest, FhirResponse
from ficus.api.interactions import Interactions
from ficus.auth import AuthError, AuthSettings, create_authenticator
from ficus.config import Settings
from ficus.hl7v2.listener import listener_from_environment
from ficus.hl7v2.outbound.worker import outbound_from_environment
from ficus.outcome import FhirError, operation_outcome
from ficus.policy import Policy
from ficus.spec import definitions
from ficus.store.database import open_database
from ficus.store.repository import Repository

log = logging.getLogger("ficus")

CONTENT_TYPE = f"{FHIR_JSON}; charset=utf-8"
_JSON_FORMATS = {"json", "application/json", FHIR_JSON, "application/json+fhir", "text/json"}
_XML_FORMATS = {"xml", "application/xml", "application/fhir+xml", "text/xml", "application/xml+fhir"}
_EXPOSED_HEADERS = ["Location", "Content-Location", "ETag", "Last-Modified", "WWW-Authenticate"]
_BODY_TYPES = {FHIR_JSON, "application/json", "application/json+fhir", JSON_PATCH, "application/x-www-form-urlencoded"}


def create_app(settings: Settings | None = None, policy: Policy | None = None) -> Starlette:
    settings = settings or Settings.from_environment()
    state: dict[str, Any] = {}
    # None for FICUS_AUTH=off, which logs a loud warning that the server is open
    authenticator = create_authenticator(AuthSettings.from_environment(settings.base_url, settings.auth, settings.auth_issuer))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        database = open_database(settings.database_url)
        repository = Repository(database, definitions(), settings.base_url)
        chosen = policy or (authenticator.policy(repository.definitions) if authenticator else Policy())
        state["interactions"] = Interactions(settings, repository, chosen)
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
            database.close()

    async def fhir_endpoint(request: Request) -> Response:
        pretty = request.query_params.get("_pretty") == "true"
        try:
            fhir_request = await _fhir_request(request, settings)
            response = await run_in_threadpool(handle, fhir_request, request.headers.get("authorization"))
        except AuthError as error:  # 401/403 with its WWW-Authenticate challenge (RFC 6750)
            response = FhirResponse(error.status, operation_outcome(error.issues), error.headers)
        except FhirError as error:
            response = FhirResponse(error.status, operation_outcome(error.issues))
        except RecursionError:
            response = FhirResponse(400, operation_outcome(fhirjson.too_deep().issues))
        except Exception:  # noqa: BLE001 - the client gets an OperationOutcome, the log the trace
            log.exception("Unhandled error for %s %s", request.method, request.url.path)
            response = FhirResponse(500, operation_outcome([_internal_error()]))
        return _http_response(response, pretty, request.method == "HEAD")

    def handle(fhir_request: FhirRequest, authorization: str | None) -> FhirResponse:
        if authenticator is not None:  # the token lookup runs in the interaction's worker thread
            fhir_request.caller = authenticator.caller(authorization)
        return state["interactions"].handle(fhir_request)

    routes = [
        *(authenticator.routes() if authenticator else []),  # before the catch-all: one lives under /fhir
        Route("/fhir", fhir_endpoint, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
        Route("/fhir/{path:path}", fhir_endpoint, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=_cors(settings))


def _cors(settings: Settings) -> list[Middleware]:
    """CORS for browser apps on other origins (SMART apps): preflights, the Authorization
    header, and the response headers a FHIR client reads."""
    origins = settings.allowed_origins
    if not origins:
        return []
    return [Middleware(
        CORSMiddleware, allow_origins=origins, allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["*"], expose_headers=_EXPOSED_HEADERS, max_age=600,
    )]


def _internal_error() -> Any:
    from ficus.outcome import Issue

    return Issue("fatal", "exception", "The server failed to process the request; the error was logged")


async def _fhir_request(request: Request, settings: Settings) -> FhirRequest:
    _negotiate(request)
    headers = {key.lower(): value for key, value in request.headers.items()}
    body = b""
    if request.method in ("POST", "PUT", "PATCH"):
        content_type = headers.get("content-type", FHIR_JSON).split(";")[0].strip().lower()
        if content_type in _XML_FORMATS:
            raise FhirError.of(415, "not-supported", "XML request bodies are not supported yet; send application/fhir+json")
        if content_type not in _BODY_TYPES:
            raise FhirError.of(415, "not-supported", f"Unsupported Content-Type {content_type!r}; send application/fhir+json")
        body = await _read_body(request, settings.max_body_bytes)
    path = request.path_params.get("path", "")
    return FhirRequest(request.method, path.strip("/"), request.query_params.multi_items(), headers, body)


def _negotiate(request: Request) -> None:
    """JSON is served; an explicit request for XML or another format gets 406."""
    wanted = request.query_params.get("_format")
    if wanted is not None:
        if wanted.split(";")[0].strip().lower() not in _JSON_FORMATS:
            raise FhirError.of(406, "not-supported", f"_format={wanted} is not supported; this server speaks JSON")
        return
    accept = request.headers.get("accept")
    if not accept:
        return
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in _JSON_FORMATS or media in ("*/*", "application/*", "text/*", ""):
            return
    raise FhirError.of(406, "not-supported", f"Accept: {accept} cannot be served; this server speaks application/fhir+json")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise FhirError.of(413, "too-costly", f"The body is larger than the {limit} bytes this server accepts")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise FhirError.of(413, "too-costly", f"The body is larger than the {limit} bytes this server accepts")
        chunks.append(chunk)
    return b"".join(chunks)


def _http_response(response: FhirResponse, pretty: bool, head: bool) -> Response:
    body = response.body
    content = b""
    if body is not None:
        content = body if isinstance(body, bytes) else fhirjson.encode(body)
        if pretty:
            content = msgspec.json.format(content, indent=2)
    headers = dict(response.headers)
    if head:
        headers["Content-Length"] = str(len(content))
        content = b""
    media_type = CONTENT_TYPE if body is not None else None
    return Response(content, status_code=response.status, headers=headers, media_type=media_type)
