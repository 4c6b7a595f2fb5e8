"""The PyPI `fhirclient` (SMART on FHIR Python client) does a standalone launch with PKCE against
a real socket: it discovers the endpoints from the CapabilityStatement, a browser stand-in signs
in and picks the patient, the library exchanges the code and reads with the token."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fhirclient import client as smart_client
from fhirclient.models.observation import Observation
from tests.auth.conftest import PASSWORD
from tests.auth.harness import JSON, ThreadedServer, free_port, query_of, sign_in, smart_app

from ficus.auth.admin import AuthAdmin
from ficus.auth.service import SmartAuth
from ficus.auth.settings import AuthSettings
from ficus.config import Settings

REDIRECT = "http://127.0.0.1/app/callback"


@pytest.fixture
def live(auth_database_url: str) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    app = smart_app(Settings(database_url=auth_database_url, base_url=base), SmartAuth(AuthSettings(base_url=base)))
    server = ThreadedServer(app, port)
    yield base
    server.stop()


def test_fhirclient_standalone_launch(live: str, admin: AuthAdmin) -> None:
    issuer = live.removesuffix("/fhir")
    loader = admin.register_client("Loader", "confidential-symmetric", scope="system/*.cruds", grant_types=["client_credentials"])
    token = httpx.post(f"{issuer}/auth/token", data={"grant_type": "client_credentials", "scope": "system/*.cruds"},
                       auth=(loader.client.client_id, loader.secret or "")).json()["access_token"]
    headers = {**JSON, "Authorization": f"Bearer {token}"}
    patient = httpx.post(f"{live}/Patient", json={"resourceType": "Patient", "name": [{"family": "Alpha"}]}, headers=headers).json()["id"]
    httpx.post(f"{live}/Observation", headers=headers, json={
        "resourceType": "Observation", "status": "final", "code": {"text": "pulse"}, "subject": {"reference": f"Patient/{patient}"},
    }).raise_for_status()
    admin.add_user("doctor", PASSWORD, "Practitioner/p1")
    admin.register_client("fhirclient app", "public", [REDIRECT], "launch/patient openid fhirUser offline_access patient/*.rs", client_id="py-app")

    smart = smart_client.FHIRClient(settings={
        "app_id": "py-app", "api_base": live + "/", "redirect_uri": REDIRECT,
        "scope": "openid fhirUser offline_access patient/*.rs",
    })
    authorize = smart.authorize_url
    assert authorize.startswith(f"{issuer}/auth/authorize?")
    assert query_of(authorize)["code_challenge_method"] == "S256"
    with httpx.Client(timeout=10) as browser:
        final = sign_in(browser, authorize, "doctor", PASSWORD, patient=patient)
    assert final.status_code == 302
    smart.handle_callback(final.headers["location"])
    assert smart.ready and smart.patient_id == patient
    assert smart.patient.name[0].family == "Alpha"
    found = list(Observation.where(struct={"subject": f"Patient/{patient}"}).perform_resources_iter(smart.server))
    assert [o.code.text for o in found if isinstance(o, Observation)] == ["pulse"]
    assert smart.reauthorize()  # refresh (offline_access) through the library
    assert smart.patient_id == patient
