"""Every interaction, including each Bundle entry, passes the policy decision point."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from ficus.app import create_app
from ficus.config import Settings
from ficus.outcome import FhirError
from ficus.policy import Access, Caller, Policy

JSON = {"Content-Type": "application/fhir+json"}


class RecordingPolicy(Policy):
    """Records each access and refuses deletes of Patients."""

    def __init__(self) -> None:
        self.seen: list[Access] = []

    def authorize(self, caller: Caller, access: Access) -> None:
        self.seen.append(access)
        if access.interaction == "delete" and access.res_type == "Patient":
            raise FhirError.of(403, "forbidden", "Deleting patients is not allowed")


@pytest.fixture
def policy() -> RecordingPolicy:
    return RecordingPolicy()


@pytest.fixture
def guarded(settings: Settings, policy: RecordingPolicy) -> Iterator[TestClient]:
    with TestClient(create_app(settings, policy), base_url=settings.base_url + "/") as client:
        yield client


def test_each_interaction_is_authorized(guarded: TestClient, policy: RecordingPolicy) -> None:
    pid = guarded.post("Patient", json={"resourceType": "Patient"}, headers=JSON).json()["id"]
    guarded.get(f"Patient/{pid}")
    guarded.get(f"Patient/{pid}/_history/1")
    guarded.get("Patient", params={"_id": pid})
    guarded.get("metadata")
    assert [a.interaction for a in policy.seen] == ["create", "read", "vread", "search-type", "capabilities"]
    assert policy.seen[1] == Access("read", "Patient", pid)


def test_denied_interaction_is_403_and_changes_nothing(guarded: TestClient) -> None:
    pid = guarded.post("Patient", json={"resourceType": "Patient"}, headers=JSON).json()["id"]
    response = guarded.delete(f"Patient/{pid}")
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"
    assert guarded.get(f"Patient/{pid}").status_code == 200


def test_bundle_entries_are_authorized_one_by_one(guarded: TestClient, policy: RecordingPolicy) -> None:
    pid = guarded.post("Patient", json={"resourceType": "Patient"}, headers=JSON).json()["id"]
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:x", "resource": {"resourceType": "Organization", "name": "A"}, "request": {"method": "POST", "url": "Organization"}},
        {"request": {"method": "DELETE", "url": f"Patient/{pid}"}},
    ]}
    response = guarded.post("", json=transaction, headers=JSON)
    assert response.status_code == 403
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1]"]
    assert guarded.get("Organization").json()["total"] == 0
    # the transaction itself, then its DELETE (processed before the POST, which never runs)
    assert [a.interaction for a in policy.seen[1:3]] == ["transaction", "delete"]
