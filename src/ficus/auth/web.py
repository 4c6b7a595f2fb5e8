"""The authorization server's HTTP side: discovery, JWKS, the token endpoints and the browser
pages of an authorization (sign in, choose a patient, consent).

An authorization request is validated by Authlib, stored (`auth_request`) and bound to the
browser with a cookie; the pages then move it along - login, patient picker for
`launch/patient`, consent where the user may untick scopes - and the consent turns it into a
code. All state is in the database, so each step may reach another Ficus process.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jinja2
from authlib.oauth2 import OAuth2Error
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ficus.auth import scopes
from ficus.auth.crypto import burn_password_check, digest, new_secret, verify_password
from ficus.auth.discovery import openid_configuration, smart_configuration
from ficus.auth.models import MICROS
from ficus.auth.server import FormRequest
from ficus.auth.store import PendingRequest
from ficus.fhirtime import now_micros

if TYPE_CHECKING:
    from ficus.auth.service import SmartAuth

BROWSER_COOKIE = "ficus_auth_browser"
TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
}
_PATIENT_PICKS = 20
FORM_LIMIT = 64 * 1024


@dataclass(frozen=True)
class PatientChoice:
    id: str
    label: str


class AuthWeb:
    """The Starlette endpoints of one `SmartAuth`."""

    def __init__(self, auth: SmartAuth) -> None:
        self.auth = auth
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
        )

    def routes(self) -> list[BaseRoute]:
        """Mount these before the `/fhir/{path}` catch-all (one of them lives under `/fhir`)."""
        return [
            Route("/.well-known/smart-configuration", self.smart_configuration, methods=["GET", "OPTIONS"]),
            Route("/fhir/.well-known/smart-configuration", self.smart_configuration, methods=["GET", "OPTIONS"]),
            Route("/.well-known/openid-configuration", self.openid_configuration, methods=["GET", "OPTIONS"]),
            Route("/auth/jwks", self.jwks, methods=["GET", "OPTIONS"]),
            Route("/auth/authorize", self.authorize, methods=["GET", "POST"]),
            Route("/auth/login", self.login, methods=["GET", "POST"]),
            Route("/auth/patient", self.patient, methods=["GET", "POST"]),
            Route("/auth/consent", self.consent, methods=["GET", "POST"]),
            Route("/auth/token", self.token, methods=["POST", "OPTIONS"]),
            Route("/auth/introspect", self.introspect, methods=["POST", "OPTIONS"]),
            Route("/auth/revoke", self.revoke, methods=["POST", "OPTIONS"]),
        ]

    # -- discovery --------------------------------------------------------------------------

    async def smart_configuration(self, request: Request) -> Response:
        return _json(request, smart_configuration(self.auth.settings))

    async def openid_configuration(self, request: Request) -> Response:
        return _json(request, openid_configuration(self.auth.settings))

    async def jwks(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return _json(request, {})
        return _json(request, await run_in_threadpool(self.auth.keys.jwks))

    # -- token endpoints (machine to machine) --------------------------------------------------

    async def token(self, request: Request) -> Response:
        return await self._endpoint(request, "token", lambda oauth: self.auth.server.create_token_response(oauth))

    async def introspect(self, request: Request) -> Response:
        return await self._endpoint(request, "introspect", lambda oauth: self.auth.server.create_endpoint_response("introspection", oauth))

    async def revoke(self, request: Request) -> Response:
        return await self._endpoint(request, "revoke", lambda oauth: self.auth.server.create_endpoint_response("revocation", oauth))

    async def _endpoint(self, request: Request, name: str, respond: Any) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204)
        pairs = await read_form(request)
        if isinstance(pairs, Response):
            return pairs
        # parameters count only in the body (RFC 6749 §2.3.1: never secrets in the URL)
        oauth = FormRequest("POST", self.auth.settings.endpoint(name), request.headers, [], pairs)
        status, body, headers = await run_in_threadpool(respond, oauth)
        return JSONResponse(body, status_code=status, headers=dict(headers))

    # -- the browser flow ------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        pairs = list(request.query_params.multi_items())
        if request.method == "POST":
            form = await read_form(request)
            if isinstance(form, Response):
                return form
            pairs += form
        return await run_in_threadpool(self._authorize, request, pairs)

    def _authorize(self, request: Request, pairs: list[tuple[str, str]]) -> Response:
        settings = self.auth.settings
        oauth = FormRequest("GET", settings.endpoint("authorize"), request.headers, pairs)
        try:
            self.auth.server.get_consent_grant(oauth, end_user=None)
        except OAuth2Error as error:
            return self._oauth_error(error)
        browser = request.cookies.get(BROWSER_COOKIE) or new_secret()
        request_id = new_secret()
        launch = oauth.launch_context
        now = now_micros()
        if secrets.randbelow(100) == 0:
            self.auth.store.purge_expired()  # unauthenticated requests write rows: sweep now and then
        self.auth.store.add_request(PendingRequest(
            request_hash=digest(request_id), browser_hash=digest(browser), client_id=oauth.client.client_id,
            params={k: v for k, v in oauth.payload.data.items()}, scope=oauth.scope, username=None, auth_time=None,
            patient=launch.patient if launch else None, encounter=launch.encounter if launch else None,
            launch_bound=launch is not None, created=now, expires=now + settings.request_seconds * MICROS,
        ))
        response = RedirectResponse(f"{settings.issuer}/auth/login?{urlencode({'request': request_id})}", status_code=303)
        self._set_browser_cookie(response, browser)
        return response

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return await run_in_threadpool(self._login_page, request, request.query_params.get("request", ""), None, None)
        form = await read_form(request)
        if isinstance(form, Response):
            return form
        return await run_in_threadpool(self._login, request, dict(form))

    def _login_page(self, request: Request, request_id: str, error: str | None, username: str | None) -> Response:
        pending = self._pending(request, request_id)
        if isinstance(pending, Response):
            return pending
        return self._page("login.html", error=error, username=username,
                          request_id=request_id, action=self._url("login"), client_name=self._client_name(pending))

    def _login(self, request: Request, values: dict[str, str]) -> Response:
        request_id = values.get("request", "")
        pending = self._pending(request, request_id)
        if isinstance(pending, Response):
            return pending
        username, password = values.get("username", ""), values.get("password", "")
        user = self.auth.store.user(username) if username else None
        if user is None or not user.active:
            burn_password_check(password)
            return self._login_page(request, request_id, "The user name or password is not correct.", username)
        if not verify_password(password, user.password_hash):
            return self._login_page(request, request_id, "The user name or password is not correct.", username)
        changes: dict[str, Any] = {"username": user.username, "auth_time": now_micros()}
        if pending.patient is None and user.fhir_user and user.fhir_user.startswith("Patient/"):
            changes["patient"] = user.fhir_user.partition("/")[2]  # a patient acts for themselves
        self.auth.store.update_request(pending.request_hash, **changes)
        needs_patient = "launch/patient" in scopes.split_scope(pending.scope) and changes.get("patient", pending.patient) is None
        step = "patient" if needs_patient else "consent"
        return RedirectResponse(f"{self._url(step)}?{urlencode({'request': request_id})}", status_code=303)

    async def patient(self, request: Request) -> Response:
        if request.method == "GET":
            params = request.query_params
            return await run_in_threadpool(self._patient_page, request, params.get("request", ""), params.get("q"), None)
        form = await read_form(request)
        if isinstance(form, Response):
            return form
        return await run_in_threadpool(self._choose_patient, request, dict(form))

    def _patient_page(self, request: Request, request_id: str, query: str | None, error: str | None) -> Response:
        pending = self._signed_in(request, request_id)
        if isinstance(pending, Response):
            return pending
        choices = self.auth.find_patients(query, _PATIENT_PICKS)
        return self._page("patient.html", status=200 if error is None else 400, error=error, query=query,
                          patients=choices, request_id=request_id, action=self._url("patient"),
                          client_name=self._client_name(pending))

    def _choose_patient(self, request: Request, values: dict[str, str]) -> Response:
        request_id = values.get("request", "")
        pending = self._signed_in(request, request_id)
        if isinstance(pending, Response):
            return pending
        user = self.auth.store.user(pending.username or "")
        if user is not None and user.fhir_user and user.fhir_user.startswith("Patient/"):
            return self._error_page("A patient can only launch applications for themselves.", "access_denied", 403)
        chosen = (values.get("patient_id") or "").strip() or values.get("patient", "")
        if not chosen or not self.auth.patient_exists(chosen):
            return self._patient_page(request, request_id, None, f"There is no Patient with the id {chosen!r}." if chosen else "Choose a patient.")
        self.auth.store.update_request(pending.request_hash, patient=chosen)
        return RedirectResponse(f"{self._url('consent')}?{urlencode({'request': request_id})}", status_code=303)

    async def consent(self, request: Request) -> Response:
        if request.method == "GET":
            return await run_in_threadpool(self._consent_page, request, request.query_params.get("request", ""))
        form = await read_form(request)
        if isinstance(form, Response):
            return form
        return await run_in_threadpool(self._decide, request, form)

    def _consent_page(self, request: Request, request_id: str) -> Response:
        pending = self._signed_in(request, request_id)
        if isinstance(pending, Response):
            return pending
        if "launch/patient" in scopes.split_scope(pending.scope) and pending.patient is None:
            return RedirectResponse(f"{self._url('patient')}?{urlencode({'request': request_id})}", status_code=303)
        listed = [{"name": name, "description": describe_scope(name)} for name in scopes.split_scope(pending.scope)]
        return self._page("consent.html", request_id=request_id, action=self._url("consent"), scopes=listed,
                          username=pending.username, patient=pending.patient, client_name=self._client_name(pending))

    def _decide(self, request: Request, values: list[tuple[str, str]]) -> Response:
        fields = dict(values)
        request_id = fields.get("request", "")
        pending = self._signed_in(request, request_id)
        if isinstance(pending, Response):
            return pending
        if "launch/patient" in scopes.split_scope(pending.scope) and pending.patient is None:
            return self._error_page("Choose a patient first.", "invalid_request", 400)
        if not self.auth.store.finish_request(pending.request_hash):
            return self._error_page("This authorization request was already answered.", "invalid_request", 400)
        requested = scopes.split_scope(pending.scope)
        ticked = {value for key, value in values if key == "scope"}
        granted = [name for name in requested if name in ticked]  # the user can only take away
        params = dict(pending.params)
        params["scope"] = scopes.join_scope(granted)
        oauth = FormRequest("GET", self.auth.settings.endpoint("authorize"), request.headers, list(params.items()))
        oauth.pending = pending
        user = self.auth.store.user(pending.username or "")
        try:
            grant = self.auth.server.get_consent_grant(oauth, end_user=user)
        except OAuth2Error as error:
            return self._oauth_error(error)
        approved = fields.get("decision") == "approve" and user is not None and user.active
        status, _, headers = self.auth.server.create_authorization_response(oauth, grant_user=user if approved else None, grant=grant)
        location = dict(headers).get("Location")
        if status == 302 and location:
            return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})
        return self._error_page("The authorization could not be completed.", None, status)

    # -- helpers ---------------------------------------------------------------------------------

    def _pending(self, request: Request, request_id: str) -> PendingRequest | Response:
        pending = self.auth.store.request(digest(request_id)) if request_id else None
        browser = request.cookies.get(BROWSER_COOKIE)
        if pending is None:
            return self._error_page("This sign-in link is unknown or has expired; start again from the application.", "invalid_request", 400)
        if browser is None or digest(browser) != pending.browser_hash:
            return self._error_page("This sign-in belongs to another browser session; start again from the application.", "invalid_request", 400)
        return pending

    def _signed_in(self, request: Request, request_id: str) -> PendingRequest | Response:
        pending = self._pending(request, request_id)
        if isinstance(pending, PendingRequest) and pending.username is None:
            return RedirectResponse(f"{self._url('login')}?{urlencode({'request': request_id})}", status_code=303)
        return pending

    def _client_name(self, pending: PendingRequest) -> str:
        client = self.auth.store.client(pending.client_id)
        return client.name if client is not None else pending.client_id

    def _oauth_error(self, error: OAuth2Error) -> Response:
        status, body, headers = error()
        location = dict(headers).get("Location")
        if status == 302 and location:
            return RedirectResponse(location, status_code=302, headers={"Cache-Control": "no-store"})
        # no verified redirect URI: tell the user, never send them to an unregistered address
        message = body.get("error_description") or "The application sent an invalid authorization request."
        return self._error_page(message, body.get("error"), 400)

    def _error_page(self, message: str, error: str | None, status: int) -> Response:
        return self._page("error.html", status=status, message=message, error=error)

    def _page(self, name: str, status: int = 200, **values: Any) -> Response:
        html = self.templates.get_template(f"auth/{name}").render(**values)
        return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)

    def _url(self, step: str) -> str:
        return f"{self.auth.settings.issuer}/auth/{step}"

    def _set_browser_cookie(self, response: Response, browser: str) -> None:
        response.set_cookie(
            BROWSER_COOKIE, browser, max_age=self.auth.settings.request_seconds,
            path=urlsplit(self.auth.settings.issuer).path + "/auth", httponly=True,
            samesite="lax", secure=self.auth.settings.secure_cookies,
        )


async def read_form(request: Request, limit: int = FORM_LIMIT) -> list[tuple[str, str]] | Response:
    """The pairs of an `application/x-www-form-urlencoded` body (all these endpoints take), capped."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        return JSONResponse({"error": "invalid_request", "error_description": "Send application/x-www-form-urlencoded"}, 400)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return JSONResponse({"error": "invalid_request", "error_description": "The request body is too large"}, 413)
        chunks.append(chunk)
    try:
        return parse_qsl(b"".join(chunks).decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        return JSONResponse({"error": "invalid_request", "error_description": "The form body cannot be read"}, 400)


def _json(request: Request, body: dict) -> Response:
    if request.method == "OPTIONS":
        return Response(status_code=204)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


_CONTEXT_DESCRIPTIONS = {
    "openid": "Confirm your identity to the application",
    "fhirUser": "Know which FHIR record (Practitioner, Patient, ...) you are",
    "profile": "See your name",
    "launch": "Use the patient and encounter of your current EHR session",
    "launch/patient": "Know the patient you chose",
    "launch/encounter": "Know the encounter you chose",
    "offline_access": "Keep access after you close the application, until you revoke it",
    "online_access": "Keep access while you use the application",
}
_LETTER_WORDS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
_LEVEL_WORDS = {"patient": "of the selected patient", "user": "you can access", "system": "on the whole server"}


def describe_scope(name: str) -> str:
    """A plain-language line for the consent page."""
    if name in _CONTEXT_DESCRIPTIONS:
        return _CONTEXT_DESCRIPTIONS[name]
    parsed = scopes.parse_resource_scope(name)
    if parsed is None:
        return name
    verbs = [word for letter, word in _LETTER_WORDS.items() if letter in parsed.permissions]
    what = "all records" if parsed.res_type == "*" else f"{parsed.res_type} records"
    text = f"{', '.join(verbs[:-1]) + ' and ' if len(verbs) > 1 else ''}{verbs[-1]} {what} {_LEVEL_WORDS[parsed.level]}"
    if parsed.query:
        text += " matching " + ", ".join(f"{k}={v}" for k, v in parsed.query)
    return text[0].upper() + text[1:]
