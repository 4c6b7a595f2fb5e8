"""The Ficus app with an authenticator a test configures, and a browser stand-in.

`smart_app` is `create_app` with the authenticator as the test builds it (short lifetimes, a
JWKS fetcher of its own); tests of the app as deployed use `create_app` alone (`test_wiring`,
`test_cors`, `test_browser`) or `ficus serve` (`test_live_server`).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import uvicorn

from ficus.app import ASGIApp, create_app
from ficus.auth.service import Authenticator
from ficus.config import Settings

JSON = {"Content-Type": "application/fhir+json"}


def smart_app(settings: Settings, authenticator: Authenticator) -> ASGIApp:
    """`create_app` with the test's authenticator, its mode and issuer in the settings too (the
    CapabilityStatement's `rest.security` follows them)."""
    settings = dataclasses.replace(settings, auth=authenticator.settings.mode, auth_issuer=authenticator.settings.issuer)
    return create_app(settings, authenticator=authenticator)


# -- PKCE and the browser side of an authorization ----------------------------------------------

def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Authorization:
    """One run through authorize -> login -> (patient) -> consent."""

    client_id: str
    redirect_uri: str
    scope: str
    aud: str
    verifier: str = ""
    state: str = field(default_factory=lambda: secrets.token_urlsafe(8))
    extra: dict[str, str] = field(default_factory=dict)

    def params(self) -> dict[str, str]:
        verifier, challenge = pkce()
        self.verifier = verifier
        return {
            "response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
            "scope": self.scope, "state": self.state, "aud": self.aud,
            "code_challenge": challenge, "code_challenge_method": "S256", **self.extra,
        }


def sign_in(
    browser: httpx.Client, authorize_url: str, username: str, password: str, patient: str | None = None,
    untick: tuple[str, ...] = (), decision: str = "approve",
) -> httpx.Response:
    """Drive the pages as a user would; returns the final redirect to the app."""
    response = browser.get(authorize_url, follow_redirects=False)
    assert response.status_code == 303, response.text
    login_url = response.headers["location"]
    request_id = query_of(login_url)["request"]
    page = browser.get(login_url)
    assert page.status_code == 200 and 'name="password"' in page.text
    response = browser.post(login_url.split("?")[0], data={"request": request_id, "username": username, "password": password}, follow_redirects=False)
    assert response.status_code == 303, response.text
    next_url = response.headers["location"]
    if "/auth/patient" in next_url:
        page = browser.get(next_url)
        assert page.status_code == 200, page.text
        response = browser.post(next_url.split("?")[0], data={"request": request_id, "patient_id": patient or ""}, follow_redirects=False)
        assert response.status_code == 303, response.text
        next_url = response.headers["location"]
    assert "/auth/consent" in next_url
    page = browser.get(next_url)
    assert page.status_code == 200, page.text
    ticked = [value for value in _checkbox_values(page.text) if value not in untick]
    data = {"request": request_id, "decision": decision, "scope": ticked}
    return browser.post(next_url.split("?")[0], data=data, follow_redirects=False)


def _checkbox_values(html: str) -> list[str]:
    import re

    return [match.replace("&#39;", "'").replace("&amp;", "&").replace("&#34;", '"') for match in re.findall(r'name="scope" id="[^"]+" value="([^"]+)"', html)]


def authorize_url(issuer: str, params: dict[str, str]) -> str:
    return f"{issuer}/auth/authorize?{urlencode(params)}"


# -- a real socket for clients that use `requests` ----------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThreadedServer:
    """Uvicorn serving an ASGI app on 127.0.0.1 from a background thread."""

    def __init__(self, app: ASGIApp, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
