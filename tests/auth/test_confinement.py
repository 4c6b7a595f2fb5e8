"""A token for Patient A learns nothing of Patient B through the paths that look at resources
without returning them: chains, `_has`, `_list`, conditional creates, updates and references,
and type and system history. Each check is also run with an unrestricted system token, which
must find B's data, so a pass cannot come from the data being absent."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from starlette.testclient import TestClient
from tests.auth.conftest import BASE, ISSUER, World, code_flow_tokens

from ficus.auth.admin import AuthAdmin

TOKEN = f"{ISSUER}/auth/token"
JSON = {"Content-Type": "application/fhir+json"}
SECRET_ID = "urn:example:secret|b-1"


def _patient_token(app_client: TestClient, world: World, scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {code_flow_tokens(app_client, world, f'launch/patient {scope}')['access_token']}", **JSON}


def _system_token(app_client: TestClient, admin: AuthAdmin) -> dict[str, str]:
    registered = admin.register_client("Auditor", "confidential-symmetric", scope="system/*.cruds", grant_types=["client_credentials"])
    response = app_client.post(TOKEN, data={"grant_type": "client_credentials", "scope": "system/*.cruds"},
                               auth=(registered.client.client_id, registered.secret or ""))
    return {"Authorization": f"Bearer {response.json()['access_token']}", **JSON}


@dataclass
class Records:
    world: World
    system: dict[str, str]
    reader: dict[str, str]  # patient/*.rs for A
    writer: dict[str, str]  # patient/*.cruds for A
    practitioner: str  # performed B's observation only
    obs_b_secret: str  # B's observation with an identifier
    list_b: str


@pytest.fixture
def records(app_client: TestClient, world: World, admin: AuthAdmin) -> Records:
    system = _system_token(app_client, admin)

    def post(resource: dict) -> str:
        response = app_client.post(f"{BASE}/{resource['resourceType']}", json=resource, headers=system)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    practitioner = post({"resourceType": "Practitioner", "name": [{"family": "Onlyb"}]})
    secret = post({
        "resourceType": "Observation", "status": "final", "code": {"text": "secret of B"},
        "identifier": [{"system": SECRET_ID.split("|")[0], "value": SECRET_ID.split("|")[1]}],
        "subject": {"reference": f"Patient/{world.patient_b}"}, "performer": [{"reference": f"Practitioner/{practitioner}"}],
    })
    # in both compartments: A is its subject, B its performer; the chain to B must stay closed
    post({
        "resourceType": "Observation", "status": "final", "code": {"text": "shared"},
        "subject": {"reference": f"Patient/{world.patient_a}"}, "performer": [{"reference": f"Patient/{world.patient_b}"}],
    })
    list_b = post({
        "resourceType": "List", "status": "current", "mode": "working", "subject": {"reference": f"Patient/{world.patient_b}"},
        "entry": [{"item": {"reference": f"Practitioner/{practitioner}"}}],
    })
    reader = _patient_token(app_client, world, "patient/*.rs")
    writer = _patient_token(app_client, world, "patient/*.cruds")
    return Records(world, system, reader, writer, practitioner, secret, list_b)


def _ids(response) -> set[str]:  # noqa: ANN001
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry", []) if e.get("search", {}).get("mode") == "match"}


def _outcome(response) -> str:  # noqa: ANN001
    outcomes = [e["resource"] for e in response.json().get("entry", []) if e.get("search", {}).get("mode") == "outcome"]
    return " ".join(issue.get("diagnostics", "") for o in outcomes for issue in o["issue"])


def test_chains_do_not_reach_into_another_patient(app_client: TestClient, records: Records) -> None:
    query = {"performer:Patient.name": "Beta"}
    assert len(_ids(app_client.get(f"{BASE}/Observation", params=query, headers=records.system))) == 1
    confined = app_client.get(f"{BASE}/Observation", params=query, headers=records.reader)
    assert _ids(confined) == set()
    assert "Chained, _has and _list criteria only consider the Patient resources" in _outcome(confined)
    # the same chain to A herself, and chains through shared types, still match
    assert len(_ids(app_client.get(f"{BASE}/Observation", params={"subject:Patient.name": "Alpha"}, headers=records.reader))) == 3


def test_includes_of_another_patient_are_withheld_and_said(app_client: TestClient, records: Records) -> None:
    query = {"code:text": "shared", "_include": "Observation:performer"}
    everything = app_client.get(f"{BASE}/Observation", params=query, headers=records.system).json()
    assert records.world.patient_b in {e["resource"]["id"] for e in everything["entry"] if e["search"]["mode"] == "include"}
    confined = app_client.get(f"{BASE}/Observation", params=query, headers=records.reader)
    entries = confined.json()["entry"]
    assert [e["search"]["mode"] for e in entries].count("match") == 1
    assert not [e for e in entries if e["search"]["mode"] == "include"]
    assert "1 included resource(s) outside what the access token may see were withheld" in _outcome(confined)


def test_has_does_not_count_another_patients_resources(app_client: TestClient, records: Records) -> None:
    query = {"_has:Observation:performer:subject": f"Patient/{records.world.patient_b}"}
    assert _ids(app_client.get(f"{BASE}/Practitioner", params=query, headers=records.system)) == {records.practitioner}
    confined = app_client.get(f"{BASE}/Practitioner", params=query, headers=records.reader)
    assert _ids(confined) == set()
    assert "Observation" in _outcome(confined)
    by_index = {"_has:Observation:performer:identifier": SECRET_ID}  # answered from the index tables alone when open
    assert _ids(app_client.get(f"{BASE}/Practitioner", params=by_index, headers=records.system)) == {records.practitioner}
    assert _ids(app_client.get(f"{BASE}/Practitioner", params=by_index, headers=records.reader)) == set()
    by_id = {"_has:Observation:performer:_id": records.obs_b_secret}
    assert _ids(app_client.get(f"{BASE}/Practitioner", params=by_id, headers=records.reader)) == set()
    # reverse chains into A's own records keep working
    own = {"_has:Observation:subject:code": "http://loinc.org|8867-4"}
    assert _ids(app_client.get(f"{BASE}/Patient", params=own, headers=records.reader)) == {records.world.patient_a}


def test_list_membership_of_another_patients_list_is_hidden(app_client: TestClient, records: Records) -> None:
    query = {"_list": records.list_b}
    assert _ids(app_client.get(f"{BASE}/Practitioner", params=query, headers=records.system)) == {records.practitioner}
    assert _ids(app_client.get(f"{BASE}/Practitioner", params=query, headers=records.reader)) == set()


def test_conditional_create_does_not_hand_out_another_patients_resource(app_client: TestClient, records: Records) -> None:
    mine = {
        "resourceType": "Observation", "status": "final", "code": {"text": "mine"},
        "identifier": [{"system": SECRET_ID.split("|")[0], "value": SECRET_ID.split("|")[1]}],
        "subject": {"reference": f"Patient/{records.world.patient_a}"},
    }
    created = app_client.post(f"{BASE}/Observation", json=mine, headers={**records.writer, "If-None-Exist": f"identifier={SECRET_ID}", "Prefer": "return=representation"})
    assert created.status_code == 201, created.text
    assert created.json()["code"]["text"] == "mine"
    # now A has one of her own: the same condition finds hers, not B's
    again = app_client.post(f"{BASE}/Observation", json=mine, headers={**records.writer, "If-None-Exist": f"identifier={SECRET_ID}"})
    assert again.status_code == 200
    assert len(_ids(app_client.get(f"{BASE}/Observation", params={"identifier": SECRET_ID}, headers=records.system))) == 2


def test_conditional_update_and_delete_see_only_the_patients_resources(app_client: TestClient, records: Records) -> None:
    body = {
        "resourceType": "Observation", "status": "amended", "code": {"text": "overwrite?"},
        "subject": {"reference": f"Patient/{records.world.patient_a}"},
    }
    updated = app_client.put(f"{BASE}/Observation", params={"identifier": SECRET_ID}, json=body, headers=records.writer)
    assert updated.status_code == 201, updated.text  # B's match is invisible: a new resource of A's
    assert updated.json()["id"] != records.obs_b_secret
    deleted = app_client.delete(f"{BASE}/Observation", params={"identifier": SECRET_ID}, headers=records.writer)
    assert deleted.status_code == 204
    kept = app_client.get(f"{BASE}/Observation/{records.obs_b_secret}", headers=records.system).json()
    assert kept["code"]["text"] == "secret of B" and kept["meta"]["versionId"] == "1"


def test_conditional_references_resolve_only_to_visible_resources(app_client: TestClient, records: Records) -> None:
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [{
        "request": {"method": "POST", "url": "Observation"},
        "resource": {
            "resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": f"Patient/{records.world.patient_a}"},
            "hasMember": [{"reference": f"Observation?identifier={SECRET_ID}"}],
        },
    }]}
    response = app_client.post(f"{BASE}/", json=transaction, headers=records.writer)
    assert response.status_code == 404, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert app_client.post(f"{BASE}/", json=transaction, headers=records.system).status_code == 200


def test_type_and_system_history_are_confined(app_client: TestClient, records: Records) -> None:
    world = records.world
    changed = {"resourceType": "Observation", "id": world.obs_b, "status": "amended", "code": {"text": "b2"},
               "subject": {"reference": f"Patient/{world.patient_b}"}}
    assert app_client.put(f"{BASE}/Observation/{world.obs_b}", json=changed, headers=records.system).status_code == 200
    everything = app_client.get(f"{BASE}/Observation/_history", headers=records.system).json()
    assert world.obs_b in {e["resource"]["id"] for e in everything["entry"]}

    history = app_client.get(f"{BASE}/Observation/_history", headers=records.reader)
    assert history.status_code == 200, history.text
    bundle = history.json()
    ids = {e["resource"]["id"] for e in bundle["entry"]}
    assert world.obs_a in ids and world.lab_a in ids
    assert not ids & {world.obs_b, records.obs_b_secret}
    assert "total" not in bundle
    for entry in bundle["entry"]:
        assert entry["resource"]["subject"]["reference"] == f"Patient/{world.patient_a}"

    system = app_client.get(f"{BASE}/_history", headers=records.reader)
    assert system.status_code == 200, system.text
    seen = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in system.json()["entry"]}
    assert ("Patient", world.patient_a) in seen and ("Observation", world.obs_a) in seen
    assert not seen & {("Patient", world.patient_b), ("Observation", world.obs_b), ("Observation", records.obs_b_secret), ("List", records.list_b)}
    assert ("Practitioner", records.practitioner) in seen  # shared, not patient data


def test_history_of_a_type_the_token_cannot_see_is_403(app_client: TestClient, records: Records) -> None:
    assert app_client.get(f"{BASE}/Task/_history", headers=records.reader).status_code == 403


def test_batch_entries_are_confined_like_single_requests(app_client: TestClient, records: Records) -> None:
    world = records.world
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Observation/{world.obs_b}"}},
        {"request": {"method": "GET", "url": f"Practitioner?_has:Observation:performer:subject=Patient/{world.patient_b}"}},
        {"request": {"method": "GET", "url": "Observation/_history"}},
        {"request": {"method": "GET", "url": f"Observation/{world.obs_a}"}},
    ]}
    entries = app_client.post(f"{BASE}/", json=batch, headers=records.reader).json()["entry"]
    assert entries[0]["response"]["status"].startswith("403")
    assert entries[0]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    found = [e["resource"]["id"] for e in entries[1]["resource"].get("entry", []) if e["search"]["mode"] == "match"]
    assert found == []
    history_ids = {e["resource"]["id"] for e in entries[2]["resource"]["entry"]}
    assert world.obs_b not in history_ids and world.obs_a in history_ids
    assert entries[3]["response"]["status"].startswith("200")
