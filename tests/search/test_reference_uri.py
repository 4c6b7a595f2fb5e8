"""reference search (id, Type/id, absolute URL, :[type], :identifier, canonical) and uri
search (exact, :above, :below), plus _profile and _source."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from . import found, load, rejected

NHS = "https://fhir.nhs.uk/Id/nhs-number"


@pytest.fixture
def observations(client: TestClient) -> None:
    def obs(id_: str, subject: dict) -> dict:
        return {"resourceType": "Observation", "id": id_, "status": "final", "code": {"text": "x"}, "subject": subject}

    load(
        client,
        {"resourceType": "Patient", "id": "123"},
        obs("relative", {"reference": "Patient/123"}),
        obs("absolute", {"reference": "http://testserver/fhir/Patient/123"}),
        obs("versioned", {"reference": "Patient/123/_history/2"}),
        obs("group", {"reference": "Group/123"}),
        obs("elsewhere", {"reference": "http://other.org/fhir/Patient/9"}),
        obs("uuid", {"reference": "urn:uuid:0b9a4b8e-1d3b-4c6f-9b3e-6f4f1c2d3e4f"}),
        obs("by-identifier", {"identifier": {"system": NHS, "value": "9000000009"}}),
        obs("contained", {"reference": "#p1"}),
    )


def test_id_and_type(client: TestClient, observations: None) -> None:
    patient_123 = {"relative", "absolute", "versioned"}
    assert found(client, "Observation", ("subject", "Patient/123")) == patient_123
    assert found(client, "Observation", ("subject", "123")) == patient_123 | {"group"}
    assert found(client, "Observation", ("subject:Patient", "123")) == patient_123
    assert found(client, "Observation", ("subject:Group", "123")) == {"group"}
    assert found(client, "Observation", ("patient", "123")) == patient_123
    assert found(client, "Observation", ("subject", "Patient/123/_history/5")) == patient_123


def test_absolute_urls(client: TestClient, observations: None) -> None:
    assert found(client, "Observation", ("subject", "http://other.org/fhir/Patient/9")) == {"elsewhere"}
    assert found(client, "Observation", ("subject", "urn:uuid:0b9a4b8e-1d3b-4c6f-9b3e-6f4f1c2d3e4f")) == {"uuid"}
    assert found(client, "Observation", ("subject", "http://testserver/fhir/Patient/123")) >= {"absolute", "relative"}


def test_identifier_modifier(client: TestClient, observations: None) -> None:
    assert found(client, "Observation", ("subject:identifier", f"{NHS}|9000000009")) == {"by-identifier"}
    assert found(client, "Observation", ("subject:identifier", "9000000009")) == {"by-identifier"}
    assert found(client, "Observation", ("subject:identifier", f"{NHS}|1")) == set()


def test_missing_and_wrong_type(client: TestClient, observations: None) -> None:
    load(client, {"resourceType": "Observation", "id": "no-subject", "status": "final", "code": {"text": "x"}})
    assert found(client, "Observation", ("subject:missing", "true")) == {"no-subject", "by-identifier", "contained"}
    rejected(client, "Observation", ("subject:Medication", "1"))
    rejected(client, "Observation", ("subject:Patient", "Group/123"))


def test_canonical_references(client: TestClient) -> None:
    load(client,
         {"resourceType": "QuestionnaireResponse", "id": "qr1", "status": "completed",
          "questionnaire": "http://example.org/Questionnaire/phq9|1.0"},
         {"resourceType": "QuestionnaireResponse", "id": "qr2", "status": "completed",
          "questionnaire": "http://example.org/Questionnaire/gad7"})
    assert found(client, "QuestionnaireResponse", ("questionnaire", "http://example.org/Questionnaire/phq9")) == {"qr1"}
    assert found(client, "QuestionnaireResponse", ("questionnaire", "http://example.org/Questionnaire/gad7|2")) == {"qr2"}


@pytest.fixture
def value_sets(client: TestClient) -> None:
    def vs(id_: str, url: str) -> dict:
        return {"resourceType": "ValueSet", "id": id_, "url": url, "status": "active"}

    load(client,
         vs("root", "http://acme.org/fhir"),
         vs("a", "http://acme.org/fhir/ValueSet/a"),
         vs("a-v2", "http://acme.org/fhir/ValueSet/a/_history/2"),
         vs("b", "http://acme.org/fhir/ValueSet/b"),
         vs("other", "http://example.org/fhir/ValueSet/a"))


def test_uri_exact_below_above(client: TestClient, value_sets: None) -> None:
    assert found(client, "ValueSet", ("url", "http://acme.org/fhir/ValueSet/a")) == {"a"}
    assert found(client, "ValueSet", ("url:below", "http://acme.org/fhir/ValueSet")) == {"a", "a-v2", "b"}
    assert found(client, "ValueSet", ("url:below", "http://acme.org/fhir/ValueSet/a")) == {"a", "a-v2"}
    assert found(client, "ValueSet", ("url:above", "http://acme.org/fhir/ValueSet/a/_history/2")) == {"root", "a", "a-v2"}
    assert found(client, "ValueSet", ("url:missing", "false")) == {"root", "a", "a-v2", "b", "other"}


def test_profile_and_source(client: TestClient) -> None:
    load(client,
         {"resourceType": "Patient", "id": "us", "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"],
                                                           "source": "http://ehr.example.org/"}},
         {"resourceType": "Patient", "id": "plain"})
    assert found(client, "Patient", ("_profile", "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient")) == {"us"}
    assert found(client, "Patient", ("_profile:below", "http://hl7.org/fhir/us/core/")) == {"us"}
    assert found(client, "Patient", ("_source", "http://ehr.example.org/")) == {"us"}
    assert found(client, "Patient", ("_profile:missing", "true")) == {"plain"}
