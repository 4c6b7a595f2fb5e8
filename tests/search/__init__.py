"""Helpers for the search tests: load small hand-made data sets, ask which ids a query finds."""

from __future__ import annotations

from starlette.testclient import TestClient

JSON = {"Content-Type": "application/fhir+json"}
STRICT = {"Prefer": "handling=strict"}


def load(client: TestClient, *resources: dict) -> None:
    """Store each resource under its own id (PUT), so tests name the expected matches."""
    for resource in resources:
        response = client.put(f"{resource['resourceType']}/{resource['id']}", json=resource, headers=JSON)
        assert response.status_code in (200, 201), response.text


def found(client: TestClient, res_type: str, *criteria: tuple[str, str]) -> set[str]:
    """Ids of the `res_type` resources the query matches (unknown parameters are an error)."""
    response = client.get(res_type, params=[*criteria, ("_count", "500")], headers=STRICT)
    assert response.status_code == 200, response.text
    bundle = response.json()
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}


def rejected(client: TestClient, res_type: str, *criteria: tuple[str, str]) -> dict:
    """The OperationOutcome of a query that must fail with 400."""
    response = client.get(res_type, params=list(criteria), headers=STRICT)
    assert response.status_code == 400, response.text
    return response.json()
