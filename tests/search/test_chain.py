"""Chained parameters (several levels) and reverse chaining with _has (nested, with a chain inside)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from . import found, load, rejected

LOINC = "http://loinc.org"


@pytest.fixture
def world(client: TestClient) -> None:
    load(
        client,
        {"resourceType": "Organization", "id": "acme", "name": "Acme Hospital"},
        {"resourceType": "Organization", "id": "other", "name": "Other Clinic"},
        {"resourceType": "Practitioner", "id": "doc", "name": [{"family": "House"}]},
        {"resourceType": "Patient", "id": "smith", "name": [{"family": "Smith"}], "managingOrganization": {"reference": "Organization/acme"},
         "generalPractitioner": [{"reference": "Practitioner/doc"}]},
        {"resourceType": "Patient", "id": "jones", "name": [{"family": "Jones"}], "managingOrganization": {"reference": "Organization/other"}},
        {"resourceType": "Patient", "id": "lonely", "name": [{"family": "Smithers"}]},
        {"resourceType": "Location", "id": "smith-wing", "name": "Smith Wing"},
        {"resourceType": "Observation", "id": "o-smith", "status": "final", "subject": {"reference": "Patient/smith"},
         "performer": [{"reference": "Practitioner/doc"}], "code": {"coding": [{"system": LOINC, "code": "1234-5"}]}},
        {"resourceType": "Observation", "id": "o-jones", "status": "final", "subject": {"reference": "Patient/jones"},
         "code": {"coding": [{"system": LOINC, "code": "9999-9"}]}},
        {"resourceType": "Observation", "id": "o-wing", "status": "final", "subject": {"reference": "Location/smith-wing"},
         "code": {"coding": [{"system": LOINC, "code": "1234-5"}]}},
        {"resourceType": "Encounter", "id": "e-smith", "status": "finished", "class": {"code": "AMB"}, "subject": {"reference": "Patient/smith"}},
        {"resourceType": "AuditEvent", "id": "audit", "type": {"code": "rest"}, "recorded": "2021-01-01T00:00:00Z",
         "agent": [{"requestor": True, "who": {"reference": "Practitioner/doc"}}], "source": {"observer": {"reference": "Practitioner/doc"}},
         "entity": [{"what": {"reference": "Observation/o-smith"}}]},
    )


def test_chain_with_type(client: TestClient, world: None) -> None:
    assert found(client, "Observation", ("subject:Patient.name", "smith")) == {"o-smith"}
    assert found(client, "Observation", ("subject:Location.name", "smith")) == {"o-wing"}
    assert found(client, "Observation", ("subject:Patient.name:exact", "Smith")) == {"o-smith"}


def test_chain_without_type_searches_every_target_type_with_the_parameter(client: TestClient, world: None) -> None:
    assert found(client, "Observation", ("subject.name", "smith")) == {"o-smith", "o-wing"}
    assert found(client, "Encounter", ("subject.name", "smith")) == {"e-smith"}
    assert found(client, "Observation", ("patient.name", "smith")) == {"o-smith"}


def test_chains_of_several_levels(client: TestClient, world: None) -> None:
    assert found(client, "Observation", ("subject:Patient.organization.name", "acme")) == {"o-smith"}
    assert found(client, "Observation", ("subject:Patient.organization.name", "other")) == {"o-jones"}
    assert found(client, "Observation", ("patient.general-practitioner:Practitioner.name", "house")) == {"o-smith"}
    assert found(client, "Observation", ("subject:Patient.organization._id", "acme")) == {"o-smith"}


def test_chained_criteria_combine(client: TestClient, world: None) -> None:
    assert found(client, "Observation", ("subject:Patient.name", "smith,jones"), ("code", "9999-9")) == {"o-jones"}


def test_reverse_chaining(client: TestClient, world: None) -> None:
    assert found(client, "Patient", ("_has:Observation:patient:code", "1234-5")) == {"smith"}
    assert found(client, "Patient", ("_has:Observation:subject:code", "9999-9,1234-5")) == {"smith", "jones"}
    assert found(client, "Patient", ("_has:Encounter:subject:status", "finished")) == {"smith"}
    assert found(client, "Patient", ("_has:Observation:patient:code", "0000-0")) == set()


def test_nested_has(client: TestClient, world: None) -> None:
    assert found(client, "Patient", ("_has:Observation:patient:_has:AuditEvent:entity:agent", "Practitioner/doc")) == {"smith"}


def test_chain_inside_has(client: TestClient, world: None) -> None:
    assert found(client, "Patient", ("_has:Observation:patient:performer:Practitioner.name", "house")) == {"smith"}
    assert found(client, "Organization", ("_has:Patient:organization:_has:Observation:patient:code", "9999-9")) == {"other"}


def test_has_and_chain_together(client: TestClient, world: None) -> None:
    assert found(client, "Observation", ("subject:Patient._has:Encounter:subject:status", "finished")) == {"o-smith"}


def test_bad_chains_are_a_400(client: TestClient, world: None) -> None:
    rejected(client, "Observation", ("status.name", "x"))
    rejected(client, "Observation", ("subject:Patient.nonsense", "x"))
    rejected(client, "Patient", ("_has:Observation:code:code", "x"))
    rejected(client, "Patient", ("_has:Nonsense:patient:code", "x"))
    rejected(client, "Patient", ("_has:Observation", "x"))
