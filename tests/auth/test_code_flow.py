"""Authorization code + PKCE over HTTP: standalone and EHR launch, id tokens, and the errors
each broken request must get (SMART App Launch 2.x, RFC 6749, RFC 7636)."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.testclient import TestClient
from tests.auth.conftest import BASE, ISSUER, PASSWORD, REDIRECT, World
from tests.auth.harness import Authorization, authorize_url, query_of, sign_in

from ficus.auth.admin import AuthAdmin

TOKEN = f"{ISSUER}/auth/token"


def _authorization(client_id: str, scope: str, **extra: str) -> Authorization:
    return Authorization(client_id, REDIRECT, scope, BASE, extra=extra)


def _code(app_client: TestClient, flow: Authorization, username: str = "doctor", **kwargs: object) -> str:
    final = sign_in(app_client, authorize_url(ISSUER, flow.params()), username, PASSWORD, **kwargs)  # type: ignore[arg-type]
    assert final.status_code == 302, final.text
    location = final.headers["location"]
    assert location.startswith(REDIRECT)
    returned = query_of(location)
    assert returned["state"] == flow.state
    return returned["code"]


def _exchange(app_client: TestClient, flow: Authorization, code: str, **overrides: str) -> dict:
    data = {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": flow.client_id, "code_verifier": flow.verifier, **overrides,
    }
    response = app_client.post(TOKEN, data=data)
    return {"status": response.status_code, **response.json()}


def _get(app_client: TestClient, path: str, token: str) -> object:
    return app_client.get(f"{BASE}/{path}", headers={"Authorization": f"Bearer {token}"})


def test_standalone_launch_with_pkce_gives_patient_context_and_id_token(app_client: TestClient, world: World) -> None:
    flow = _authorization(world.public_client, "launch/patient openid fhirUser patient/*.rs")
    code = _code(app_client, flow, patient=world.patient_a)
    token = _exchange(app_client, flow, code)
    assert token["status"] == 200, token
    assert token["token_type"] == "Bearer" and token["patient"] == world.patient_a
    assert token["need_patient_banner"] is True
    assert set(token["scope"].split()) == {"launch/patient", "openid", "fhirUser", "patient/*.rs"}
    assert "refresh_token" not in token  # neither offline_access nor online_access was asked for

    keys = KeySet.import_key_set(app_client.get(f"{ISSUER}/auth/jwks").json())
    id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    assert id_token.claims["iss"] == ISSUER
    assert id_token.claims["aud"] == [world.public_client]
    assert id_token.claims["sub"] == "doctor"
    assert id_token.claims["fhirUser"].startswith(f"{BASE}/Practitioner/")

    access = token["access_token"]
    assert _get(app_client, f"Patient/{world.patient_a}", access).status_code == 200
    assert _get(app_client, f"Observation/{world.obs_a}", access).status_code == 200
    assert _get(app_client, "Practitioner", access).status_code == 200  # shared: not patient data
    assert _get(app_client, "Task", access).status_code == 403  # outside the Patient compartment


def test_patient_token_reads_nothing_of_another_patient(app_client: TestClient, world: World) -> None:
    flow = _authorization(world.public_client, "launch/patient patient/*.rs")
    access = _exchange(app_client, flow, _code(app_client, flow, patient=world.patient_a))["access_token"]
    denied = _get(app_client, f"Observation/{world.obs_b}", access)
    assert denied.status_code == 403
    assert denied.json()["resourceType"] == "OperationOutcome"
    assert _get(app_client, f"Patient/{world.patient_b}", access).status_code == 403
    entries = _get(app_client, "Observation", access).json().get("entry", [])
    assert {e["resource"]["id"] for e in entries if e["search"]["mode"] == "match"} == {world.obs_a, world.lab_a}
    outcome = [e["resource"] for e in entries if e["search"]["mode"] == "outcome"]
    assert outcome and f"Patient/{world.patient_a}" in outcome[0]["issue"][-1]["diagnostics"]  # the narrowing is said
    revinclude = app_client.get(
        f"{BASE}/Patient", params={"_id": f"{world.patient_a},{world.patient_b}", "_revinclude": "Observation:subject"},
        headers={"Authorization": f"Bearer {access}"},
    ).json()
    ids = {e["resource"].get("id") for e in revinclude.get("entry", []) if e["search"]["mode"] != "outcome"}
    assert ids == {world.patient_a, world.obs_a, world.lab_a}
    compartment_b = _get(app_client, f"Patient/{world.patient_b}/Observation", access)
    assert compartment_b.status_code == 403
    with_write = _authorization(world.public_client, "launch/patient patient/*.cruds")
    writer = _exchange(app_client, with_write, _code(app_client, with_write, patient=world.patient_a))["access_token"]
    foreign = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": f"Patient/{world.patient_b}"}}
    created = app_client.post(f"{BASE}/Observation", json=foreign, headers={"Authorization": f"Bearer {writer}", "Content-Type": "application/fhir+json"})
    assert created.status_code == 403
    assert app_client.delete(f"{BASE}/Observation/{world.obs_b}", headers={"Authorization": f"Bearer {writer}"}).status_code == 403


def test_user_narrows_scopes_on_the_consent_page(app_client: TestClient, world: World) -> None:
    flow = _authorization(world.public_client, "launch/patient openid patient/Observation.rs patient/Patient.rs offline_access")
    code = _code(app_client, flow, patient=world.patient_a, untick=("patient/Patient.rs", "offline_access"))
    token = _exchange(app_client, flow, code)
    assert token["scope"].split() == ["launch/patient", "openid", "patient/Observation.rs"]
    assert "refresh_token" not in token
    assert _get(app_client, f"Patient/{world.patient_a}", token["access_token"]).status_code == 403


def test_scopes_beyond_the_registration_are_not_granted(app_client: TestClient, world: World, admin: AuthAdmin) -> None:
    admin.register_client("Reader", "public", [REDIRECT], "launch/patient patient/Observation.rs", client_id="reader")
    flow = _authorization("reader", "launch/patient patient/*.cruds user/*.rs openid system/*.rs")
    token = _exchange(app_client, flow, _code(app_client, flow, patient=world.patient_a))
    assert token["scope"].split() == ["launch/patient"]  # patient/*.cruds is wider than Observation.rs


def test_v1_scopes_are_understood(app_client: TestClient, world: World) -> None:
    flow = _authorization(world.public_client, "launch/patient patient/Observation.read")
    token = _exchange(app_client, flow, _code(app_client, flow, patient=world.patient_a))
    assert token["scope"] == "launch/patient patient/Observation.read"
    assert _get(app_client, f"Observation/{world.obs_a}", token["access_token"]).status_code == 200
    response = app_client.post(
        f"{BASE}/Observation", json={"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
        headers={"Authorization": f"Bearer {token['access_token']}", "Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_patient_user_gets_their_own_record_without_a_picker(app_client: TestClient, world: World) -> None:
    flow = _authorization(world.public_client, "launch/patient openid fhirUser patient/*.rs")
    token = _exchange(app_client, flow, _code(app_client, flow, username="ann"))
    assert token["patient"] == world.patient_a


def test_ehr_launch_binds_the_stored_context(app_client: TestClient, world: World, admin: AuthAdmin) -> None:
    launch = admin.create_launch(patient=world.patient_b, encounter="enc-1")
    flow = _authorization(world.confidential_client, "launch openid fhirUser patient/*.rs", launch=launch)
    code = _code(app_client, flow)
    response = app_client.post(TOKEN, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": flow.verifier,
    }, auth=(world.confidential_client, world.confidential_secret))
    token = response.json()
    assert response.status_code == 200, token
    assert (token["patient"], token["encounter"], token["need_patient_banner"]) == (world.patient_b, "enc-1", False)
    assert _get(app_client, f"Observation/{world.obs_b}", token["access_token"]).status_code == 200


def test_confidential_client_must_authenticate(app_client: TestClient, world: World) -> None:
    flow = _authorization(world.confidential_client, "launch/patient patient/*.rs")
    code = _code(app_client, flow, patient=world.patient_a)
    assert _exchange(app_client, flow, code)["error"] == "invalid_client"  # no secret: "none" is not its method


def test_unknown_launch_is_refused(app_client: TestClient, public_client: str) -> None:
    flow = _authorization(public_client, "launch patient/*.rs", launch="made-up")
    response = app_client.get(authorize_url(ISSUER, flow.params()), follow_redirects=False)
    assert response.status_code == 302
    assert query_of(response.headers["location"])["error"] == "invalid_request"


# -- negative cases --------------------------------------------------------------------------------

def test_wrong_verifier_is_invalid_grant(app_client: TestClient, world: World) -> None:
    flow = _authorization(world.public_client, "launch/patient patient/*.rs")
    code = _code(app_client, flow, patient=world.patient_a)
    assert _exchange(app_client, flow, code, code_verifier="x" * 50)["error"] == "invalid_grant"


def test_reused_code_fails_and_revokes_the_first_tokens(app_client: TestClient, world: World) -> None:
    flow = _authorization(world.public_client, "launch/patient patient/*.rs")
    code = _code(app_client, flow, patient=world.patient_a)
    first = _exchange(app_client, flow, code)
    assert first["status"] == 200
    assert _get(app_client, f"Patient/{world.patient_a}", first["access_token"]).status_code == 200
    assert _exchange(app_client, flow, code)["error"] == "invalid_grant"
    revoked = _get(app_client, f"Patient/{world.patient_a}", first["access_token"])
    assert revoked.status_code == 401
    assert 'error="invalid_token"' in revoked.headers["www-authenticate"]


@pytest.mark.parametrize("aud", ["http://localhost/other", "", "https://evil.example/fhir"])
def test_wrong_aud_is_refused_with_a_redirect(app_client: TestClient, public_client: str, aud: str) -> None:
    flow = Authorization(public_client, REDIRECT, "launch/patient patient/*.rs", aud)
    response = app_client.get(authorize_url(ISSUER, flow.params()), follow_redirects=False)
    assert response.status_code == 302
    returned = query_of(response.headers["location"])
    assert returned["error"] == "invalid_request" and returned["state"] == flow.state
    assert "aud" in returned["error_description"]


def test_unregistered_redirect_uri_gets_an_error_page_not_a_redirect(app_client: TestClient, public_client: str) -> None:
    flow = Authorization(public_client, "https://attacker.example/cb", "patient/*.rs", BASE)
    response = app_client.get(authorize_url(ISSUER, flow.params()), follow_redirects=False)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "text/html" in response.headers["content-type"]


@pytest.mark.parametrize("drop", ["code_challenge", "code_challenge_method"])
def test_pkce_s256_is_required(app_client: TestClient, public_client: str, drop: str) -> None:
    params = _authorization(public_client, "launch/patient patient/*.rs").params()
    del params[drop]
    response = app_client.get(authorize_url(ISSUER, params), follow_redirects=False)
    assert query_of(response.headers["location"])["error"] == "invalid_request"


def test_plain_pkce_is_refused(app_client: TestClient, public_client: str) -> None:
    params = _authorization(public_client, "launch/patient patient/*.rs").params()
    params["code_challenge_method"] = "plain"
    response = app_client.get(authorize_url(ISSUER, params), follow_redirects=False)
    assert query_of(response.headers["location"])["error"] == "invalid_request"


def test_denied_consent_redirects_with_access_denied(app_client: TestClient, world: World) -> None:
    flow = _authorization(world.public_client, "launch/patient patient/*.rs")
    final = sign_in(app_client, authorize_url(ISSUER, flow.params()), "doctor", PASSWORD, patient=world.patient_a, decision="deny")
    assert final.status_code == 302
    returned = query_of(final.headers["location"])
    assert (returned["error"], returned["state"]) == ("access_denied", flow.state)
    assert "code" not in returned


def test_wrong_password_shows_the_login_page_again(app_client: TestClient, world: World) -> None:
    flow = _authorization(world.public_client, "patient/*.rs")
    login = app_client.get(authorize_url(ISSUER, flow.params()), follow_redirects=False).headers["location"]
    request_id = query_of(login)["request"]
    page = app_client.post(f"{ISSUER}/auth/login", data={"request": request_id, "username": "doctor", "password": "wrong password"})
    assert page.status_code == 200 and "not correct" in page.text and 'name="password"' in page.text


def test_the_pages_belong_to_the_browser_that_started(app_client: TestClient, public_client: str) -> None:
    flow = _authorization(public_client, "patient/*.rs")
    login = app_client.get(authorize_url(ISSUER, flow.params()), follow_redirects=False).headers["location"]
    app_client.cookies.clear()
    page = app_client.get(login)
    assert page.status_code == 400 and "another browser" in page.text


def test_missing_or_bad_tokens_get_401_with_a_challenge(app_client: TestClient, public_client: str) -> None:
    missing = app_client.get(f"{BASE}/Patient")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "error=" not in missing.headers["www-authenticate"]
    assert missing.json()["resourceType"] == "OperationOutcome"
    bad = app_client.get(f"{BASE}/Patient", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["www-authenticate"]
    assert app_client.get(f"{BASE}/metadata").status_code == 200  # the CapabilityStatement stays public


@pytest.mark.parametrize("drop", ["state", "redirect_uri"])
def test_state_and_redirect_uri_are_required(app_client: TestClient, public_client: str, drop: str) -> None:
    params = _authorization(public_client, "launch/patient patient/*.rs").params()
    del params[drop]
    response = app_client.get(authorize_url(ISSUER, params), follow_redirects=False)
    if drop == "state":
        assert query_of(response.headers["location"])["error"] == "invalid_request"
    else:
        assert response.status_code == 400 and "location" not in response.headers


def test_token_endpoint_takes_only_form_bodies(app_client: TestClient, public_client: str) -> None:
    response = app_client.post(TOKEN, json={"grant_type": "client_credentials"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_patient_picker_searches_by_name_and_checks_the_id(app_client: TestClient, world: World) -> None:
    flow = _authorization(world.public_client, "launch/patient patient/*.rs")
    login = app_client.get(authorize_url(ISSUER, flow.params()), follow_redirects=False).headers["location"]
    request_id = query_of(login)["request"]
    picker = app_client.post(f"{ISSUER}/auth/login", data={"request": request_id, "username": "doctor", "password": PASSWORD}, follow_redirects=False)
    assert "/auth/patient?" in picker.headers["location"]
    # consent cannot be reached before a patient is chosen
    early = app_client.get(f"{ISSUER}/auth/consent", params={"request": request_id}, follow_redirects=False)
    assert early.status_code == 303 and "/auth/patient?" in early.headers["location"]
    page = app_client.get(f"{ISSUER}/auth/patient", params={"request": request_id, "q": "Alpha"})
    assert world.patient_a in page.text and world.patient_b not in page.text and "Ann Alpha" in page.text
    unknown = app_client.post(f"{ISSUER}/auth/patient", data={"request": request_id, "patient_id": "no-such-patient"})
    assert unknown.status_code == 400 and "no-such-patient" in unknown.text
    chosen = app_client.post(f"{ISSUER}/auth/patient", data={"request": request_id, "patient": world.patient_a}, follow_redirects=False)
    assert chosen.status_code == 303 and "/auth/consent?" in chosen.headers["location"]
    consent = app_client.get(chosen.headers["location"])
    assert f"Patient/{world.patient_a}" in consent.text and "Public App" in consent.text
