"""Real launches in headless Chromium (Debian `chromium`, driven by Playwright): the login,
patient picker and consent pages as a user works them, and an EHR launch by the npm
`fhirclient` (SMART client-js) running in a page on another origin, which discovers the
endpoints, exchanges the code with PKCE from the browser (CORS) and reads with the token.

`create_app` serves on a real socket with `FICUS_AUTH=smart`; the app pages come from a plain
static file server on another port. `make test` installs chromium and the npm package."""

from __future__ import annotations

import functools
import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from tests.auth.conftest import PASSWORD
from tests.auth.harness import Authorization, ThreadedServer, free_port, query_of

from ficus.app import create_app
from ficus.auth.admin import AuthAdmin
from ficus.config import Settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
CLIENT_JS = Path(__file__).parent / "browser" / "node_modules" / "fhirclient" / "build" / "fhir-client.js"
JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(30_000)  # generous for a loaded CI machine; a pass takes seconds
    yield opened
    context.close()


@dataclass
class Live:
    base: str  # the FHIR base URL
    issuer: str
    app: str  # origin of the app pages
    app_dir: Path
    patient_a: str
    patient_b: str


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass


@pytest.fixture
def live(auth_database_url: str, admin: AuthAdmin, tmp_path: Path) -> Iterator[Live]:
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    server = ThreadedServer(create_app(Settings(database_url=auth_database_url, base_url=base, auth="smart")), port)
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    shutil.copy(CLIENT_JS, app_dir / "fhir-client.js")
    pages = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(app_dir)))
    threading.Thread(target=pages.serve_forever, daemon=True).start()
    issuer = base.removesuffix("/fhir")
    loader = admin.register_client("Loader", "confidential-symmetric", scope="system/*.cruds", grant_types=["client_credentials"])
    token = httpx.post(f"{issuer}/auth/token", data={"grant_type": "client_credentials", "scope": "system/*.cruds"},
                       auth=(loader.client.client_id, loader.secret or "")).json()["access_token"]
    headers = {**JSON, "Authorization": f"Bearer {token}"}
    ids = []
    for family in ("Alpha", "Beta"):
        patient = httpx.post(f"{base}/Patient", json={"resourceType": "Patient", "name": [{"family": family}]}, headers=headers).json()["id"]
        httpx.post(f"{base}/Observation", headers=headers, json={
            "resourceType": "Observation", "status": "final", "code": {"text": f"pulse of {family}"},
            "subject": {"reference": f"Patient/{patient}"},
        }).raise_for_status()
        ids.append(patient)
    admin.add_user("doctor", PASSWORD, "Practitioner/p1", "Dr Who")
    yield Live(base, issuer, f"http://127.0.0.1:{pages.server_address[1]}", app_dir, ids[0], ids[1])
    pages.shutdown()
    server.stop()


def test_login_picker_and_consent_pages_in_chromium(page: Page, live: Live, admin: AuthAdmin) -> None:
    callback = f"{live.app}/callback.html"
    (live.app_dir / "callback.html").write_text("<!doctype html><title>callback</title><p>back in the app</p>")
    scope = "launch/patient openid patient/Patient.rs patient/Observation.rs"
    admin.register_client("Browser App", "public", [callback], scope, client_id="browser-app")
    flow = Authorization("browser-app", callback, scope, live.base)
    page.goto(f"{live.issuer}/auth/authorize?{urlencode(flow.params())}")

    assert page.title() == "Sign in - Ficus"
    assert "Browser App" in page.inner_text(".client")
    page.fill("#username", "doctor")
    page.fill("#password", "not the password")
    page.click("#sign-in")
    assert page.is_visible("[role=alert]")  # the same page again, saying so
    page.fill("#password", PASSWORD)
    page.click("#sign-in")

    page.wait_for_selector("#q")
    page.fill("#q", "Beta")
    page.click("#search")
    labels = page.locator("ul.scopes label").all_inner_texts()
    assert len(labels) == 1 and "Beta" in labels[0]
    page.fill("#q", "Alpha")
    page.click("#search")
    page.check(f"input[value='{live.patient_a}']")
    page.click("#choose")

    page.wait_for_selector("#approve")
    offered = page.locator("input[name=scope]").evaluate_all("boxes => boxes.map(b => b.value)")
    assert set(offered) == set(scope.split())
    assert f"Patient/{live.patient_a}" in page.inner_text(".client")
    page.uncheck("input[value='patient/Patient.rs']")  # the user narrows what the app gets
    page.click("#approve")
    page.wait_for_url(f"{callback}?*")
    returned = query_of(page.url)
    assert returned["state"] == flow.state

    token = httpx.post(f"{live.issuer}/auth/token", data={
        "grant_type": "authorization_code", "code": returned["code"], "redirect_uri": callback,
        "client_id": "browser-app", "code_verifier": flow.verifier,
    }).json()
    assert token["patient"] == live.patient_a
    assert set(token["scope"].split()) == {"launch/patient", "openid", "patient/Observation.rs"}
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(f"{live.base}/Patient/{live.patient_a}", headers=headers).status_code == 403  # unticked
    assert httpx.get(f"{live.base}/Observation", headers=headers).json()["total"] == 1


LAUNCH_PAGE = """<!doctype html><title>launch</title><script src="fhir-client.js"></script>
<script>FHIR.oauth2.authorize({clientId: "ehr-app", scope: "launch openid fhirUser patient/*.rs", redirectUri: "index.html"});</script>
"""
APP_PAGE = """<!doctype html><title>app</title><pre id="out">waiting</pre><script src="fhir-client.js"></script>
<script>
FHIR.oauth2.ready().then(async client => {
  const patient = await client.patient.read();
  const observations = await client.request("Observation", {flat: true, pageLimit: 0});
  const raw = await client.request({url: "Patient/" + client.patient.id, includeResponse: true});
  let other;
  try { await client.request("Patient/OTHER"); other = "read"; } catch (error) { other = error.status; }
  document.getElementById("out").textContent = JSON.stringify({
    patient: client.patient.id, family: patient.name[0].family, etag: raw.response.headers.get("etag"),
    observations: observations.filter(r => r.resourceType === "Observation").map(o => o.subject.reference),
    other, fhirUser: client.getFhirUser(), encounter: client.encounter.id,
  });
}).catch(error => { document.getElementById("out").textContent = "error: " + error; });
</script>
"""


def test_client_js_ehr_launch_in_chromium(page: Page, live: Live, admin: AuthAdmin) -> None:
    (live.app_dir / "launch.html").write_text(LAUNCH_PAGE)
    (live.app_dir / "index.html").write_text(APP_PAGE.replace("OTHER", live.patient_b))
    admin.register_client("EHR App", "public", [f"{live.app}/index.html"], "launch openid fhirUser patient/*.rs", client_id="ehr-app")
    launch = admin.create_launch(patient=live.patient_a, encounter="enc-7")

    page.goto(f"{live.app}/launch.html?{urlencode({'iss': live.base, 'launch': launch})}")
    page.wait_for_selector("#username")
    assert page.url.startswith(f"{live.issuer}/auth/login")
    page.fill("#username", "doctor")
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_selector("#approve")  # the launch names the patient: no picker
    page.click("#approve")
    # client-js takes code and state out of the address once it has them: match with or without
    page.wait_for_url(lambda url: url.startswith(f"{live.app}/index.html"))
    page.wait_for_function("document.getElementById('out').textContent !== 'waiting'")
    text = page.inner_text("#out")
    assert not text.startswith("error"), text
    seen = json.loads(text)
    assert seen["patient"] == live.patient_a and seen["family"] == "Alpha"
    assert seen["encounter"] == "enc-7"
    assert seen["observations"] == [f"Patient/{live.patient_a}"]
    assert seen["etag"] == 'W/"1"'  # an exposed header: readable across origins
    assert seen["other"] == 403
    assert seen["fhirUser"] == "Practitioner/p1"
