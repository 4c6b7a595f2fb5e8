"""Fixtures for the authorization tests: an app with `FICUS_AUTH=smart` on each database kind,
registered clients and users, and some patient data.

The base URL is on `localhost`: OAuth endpoints refuse plain http except on loopback hosts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from starlette.testclient import TestClient
from tests.auth.harness import JSON, Authorization, authorize_url, query_of, sign_in, smart_app

from ficus.auth.admin import AuthAdmin
from ficus.auth.service import SmartAuth
from ficus.auth.settings import AuthSettings
from ficus.auth.store import ALL_TABLES
from ficus.config import Settings
from ficus.store.database import Database, open_database

BASE = "http://localhost/fhir"
ISSUER = "http://localhost"
REDIRECT = "https://app.example.org/callback"
PASSWORD = "correct horse battery"


@pytest.fixture
def auth_database_url(database_url: str) -> str:
    """An empty database (the shared fixture empties the FHIR tables; this the auth tables)."""
    if database_url.startswith("postgresql"):
        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute(f"TRUNCATE {', '.join(ALL_TABLES)}")
    return database_url


@pytest.fixture
def fhir_settings(auth_database_url: str) -> Settings:
    return Settings(database_url=auth_database_url, base_url=BASE)


@pytest.fixture
def auth_settings() -> AuthSettings:
    return AuthSettings(base_url=BASE, mode="smart")


@pytest.fixture
def database(auth_database_url: str) -> Iterator[Database]:
    opened = open_database(auth_database_url)
    yield opened
    opened.close()


@pytest.fixture
def admin(database: Database) -> AuthAdmin:
    return AuthAdmin(database)


@pytest.fixture
def smart(auth_settings: AuthSettings) -> SmartAuth:
    return SmartAuth(auth_settings)


@pytest.fixture
def app_client(fhir_settings: Settings, smart: SmartAuth) -> Iterator[TestClient]:
    """The app with SMART on; the client is the browser, the app and the API caller at once."""
    with TestClient(smart_app(fhir_settings, smart), base_url=ISSUER) as client:
        yield client


@dataclass(frozen=True)
class World:
    """What the flow tests start from."""

    public_client: str
    confidential_client: str
    confidential_secret: str
    patient_a: str
    patient_b: str
    obs_a: str
    obs_b: str
    lab_a: str


def _post(client: TestClient, token: str | None, resource: dict) -> str:
    headers = dict(JSON)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = client.post(f"{BASE}/{resource['resourceType']}", json=resource, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


APP_SCOPE = "openid fhirUser profile launch launch/patient offline_access online_access patient/*.cruds user/*.cruds"


@pytest.fixture
def public_client(app_client: TestClient, admin: AuthAdmin) -> str:
    """Only a registered public app (for the tests of request validation)."""
    admin.register_client("Public App", "public", [REDIRECT], APP_SCOPE, client_id="public-app")
    return "public-app"


@pytest.fixture
def world(app_client: TestClient, admin: AuthAdmin, public_client: str) -> World:
    """Two patients with observations (A also a lab one), a practitioner user and a patient user,
    a public and a confidential-symmetric app, and a backend service allowed to write."""
    loader = admin.register_client(
        "Loader", "confidential-symmetric", scope="system/*.cruds", grant_types=["client_credentials"], client_id="loader",
    )
    token = app_client.post(
        f"{ISSUER}/auth/token", data={"grant_type": "client_credentials", "scope": "system/*.cruds"},
        auth=("loader", loader.secret or ""),
    ).json()["access_token"]
    patient_a = _post(app_client, token, {"resourceType": "Patient", "name": [{"family": "Alpha", "given": ["Ann"]}]})
    patient_b = _post(app_client, token, {"resourceType": "Patient", "name": [{"family": "Beta", "given": ["Bob"]}]})

    def observation(patient: str, category: str) -> dict:
        return {
            "resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Patient/{patient}"},
        }

    obs_a = _post(app_client, token, observation(patient_a, "vital-signs"))
    obs_b = _post(app_client, token, observation(patient_b, "vital-signs"))
    lab_a = _post(app_client, token, observation(patient_a, "laboratory"))
    practitioner = _post(app_client, token, {"resourceType": "Practitioner", "name": [{"family": "Who"}]})
    admin.add_user("doctor", PASSWORD, f"Practitioner/{practitioner}", "Dr Who")
    admin.add_user("ann", PASSWORD, f"Patient/{patient_a}", "Ann Alpha")
    confidential = admin.register_client("Confidential App", "confidential-symmetric", [REDIRECT], APP_SCOPE, client_id="conf-app")
    return World(public_client, "conf-app", confidential.secret or "", patient_a, patient_b, obs_a, obs_b, lab_a)


def replace_settings(settings: AuthSettings, **changes: object) -> AuthSettings:
    return dataclasses.replace(settings, **changes)


def code_flow_tokens(app_client: TestClient, world: World, scope: str) -> dict:
    """The token response of an authorization-code flow with PKCE: the doctor signs in, picks
    Patient A and approves `scope` for the public client."""
    flow = Authorization(world.public_client, REDIRECT, scope, BASE)
    final = sign_in(app_client, authorize_url(ISSUER, flow.params()), "doctor", PASSWORD, patient=world.patient_a)
    code = query_of(final.headers["location"])["code"]
    response = app_client.post(f"{ISSUER}/auth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": world.public_client, "code_verifier": flow.verifier,
    })
    assert response.status_code == 200, response.text
    return response.json()
