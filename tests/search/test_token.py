"""token search: code, system|code, |code, system|, :text, :not, :of-type, :above/:below, :in/:not-in."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from . import found, load, rejected

LOINC = "http://loinc.org"
MRN = "http://example.org/mrn"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def observation(id_: str, codings: list[tuple[str | None, str, str | None]], text: str | None = None, **fields: object) -> dict:
    code: dict = {"coding": [{k: v for k, v in (("system", s), ("code", c), ("display", d)) if v} for s, c, d in codings]}
    if text:
        code["text"] = text
    return {"resourceType": "Observation", "id": id_, "status": "final", "code": code, **fields}


@pytest.fixture
def observations(client: TestClient) -> None:
    load(
        client,
        observation("glucose", [(LOINC, "2345-7", "Glucose [Mass/volume] in Serum")], text="Blood sugar"),
        observation("weight", [(LOINC, "29463-7", "Body weight"), ("http://snomed.info/sct", "27113001", "Body weight")]),
        observation("local", [(None, "2345-7", None)], status="preliminary"),
        observation("other-system", [("http://acme.org/codes", "2345-7", "Glücose")], status="amended"),
    )


def test_code_with_and_without_system(client: TestClient, observations: None) -> None:
    assert found(client, "Observation", ("code", "2345-7")) == {"glucose", "local", "other-system"}
    assert found(client, "Observation", ("code", f"{LOINC}|2345-7")) == {"glucose"}
    assert found(client, "Observation", ("code", "|2345-7")) == {"local"}
    assert found(client, "Observation", ("code", f"{LOINC}|")) == {"glucose", "weight"}
    assert found(client, "Observation", ("code", "29463-7,27113001")) == {"weight"}
    assert found(client, "Observation", ("code", f"{LOINC}|27113001")) == set()


def test_text_searches_display_and_concept_text(client: TestClient, observations: None) -> None:
    assert found(client, "Observation", ("code:text", "blood")) == {"glucose"}
    assert found(client, "Observation", ("code:text", "body")) == {"weight"}
    assert found(client, "Observation", ("code:text", "glucose")) == {"glucose", "other-system"}
    assert found(client, "Observation", ("code:text", "serum")) == set()


def test_not_excludes_any_match_and_keeps_resources_without_the_code(client: TestClient, observations: None) -> None:
    assert found(client, "Observation", ("status:not", "final")) == {"local", "other-system"}
    assert found(client, "Observation", ("status:not", "final,amended")) == {"local"}
    assert found(client, "Observation", ("code:not", f"{LOINC}|2345-7")) == {"weight", "local", "other-system"}


def test_repeated_parameter_is_and(client: TestClient, observations: None) -> None:
    assert found(client, "Observation", ("code", "2345-7"), ("status", "final")) == {"glucose"}
    assert found(client, "Observation", ("code", "29463-7"), ("code", "27113001")) == {"weight"}


@pytest.fixture
def patients(client: TestClient) -> None:
    load(
        client,
        {"resourceType": "Patient", "id": "p1", "active": True, "gender": "female",
         "identifier": [{"system": MRN, "value": "A|1",
                         "type": {"coding": [{"system": V2_0203, "code": "MR"}], "text": "Medical record number"}}],
         "telecom": [{"system": "phone", "value": "555-0100"}, {"system": "email", "value": "p1@example.org"}]},
        {"resourceType": "Patient", "id": "p2", "active": False, "gender": "male",
         "identifier": [{"system": "http://example.org/ssn", "value": "A|1",
                         "type": {"coding": [{"system": V2_0203, "code": "SS"}]}}]},
        {"resourceType": "Patient", "id": "p3"},
    )


def test_boolean_code_and_identifier(client: TestClient, patients: None) -> None:
    assert found(client, "Patient", ("active", "true")) == {"p1"}
    assert found(client, "Patient", ("active", "false")) == {"p2"}
    assert found(client, "Patient", ("gender", "male,female")) == {"p1", "p2"}
    assert found(client, "Patient", ("identifier", "A\\|1")) == {"p1", "p2"}
    assert found(client, "Patient", ("identifier", f"{MRN}|A\\|1")) == {"p1"}
    assert found(client, "Patient", ("identifier:text", "medical")) == {"p1"}


def test_contact_point(client: TestClient, patients: None) -> None:
    assert found(client, "Patient", ("telecom", "555-0100")) == {"p1"}
    assert found(client, "Patient", ("phone", "555-0100")) == {"p1"}
    assert found(client, "Patient", ("email", "555-0100")) == set()
    assert found(client, "Patient", ("telecom", "email|p1@example.org")) == {"p1"}


def test_of_type_matches_type_and_value_of_one_identifier(client: TestClient, patients: None) -> None:
    assert found(client, "Patient", ("identifier:of-type", f"{V2_0203}|MR|A\\|1")) == {"p1"}
    assert found(client, "Patient", ("identifier:of-type", f"{V2_0203}|SS|A\\|1")) == {"p2"}
    assert found(client, "Patient", ("identifier:of-type", f"{V2_0203}|MR|A")) == set()
    rejected(client, "Patient", ("identifier:of-type", "MR"))


def test_in_and_not_in_a_value_set_of_the_package(client: TestClient, patients: None) -> None:
    gender = "http://hl7.org/fhir/ValueSet/administrative-gender"
    # gender codes have the system http://hl7.org/fhir/administrative-gender; the indexed code has none
    load(client, {"resourceType": "Observation", "id": "coded", "status": "final",
                  "code": {"coding": [{"system": "http://hl7.org/fhir/administrative-gender", "code": "male"}]}},
         {"resourceType": "Observation", "id": "uncoded", "status": "final", "code": {"coding": [{"code": "male"}]}})
    assert found(client, "Observation", ("code:in", gender)) == {"coded"}
    assert found(client, "Observation", ("code:not-in", gender)) == {"uncoded"}


def test_in_a_value_set_stored_in_the_server(client: TestClient, observations: None) -> None:
    load(client, {"resourceType": "ValueSet", "id": "sugars", "url": "http://example.org/vs/sugars", "status": "active",
                  "compose": {"include": [{"system": LOINC, "concept": [{"code": "2345-7"}, {"code": "1111-1"}]},
                                          {"system": "http://acme.org/codes", "concept": [{"code": "2345-7"}]}]}})
    assert found(client, "Observation", ("code:in", "http://example.org/vs/sugars")) == {"glucose", "other-system"}
    assert found(client, "Observation", ("code:in", "ValueSet/sugars")) == {"glucose", "other-system"}
    assert found(client, "Observation", ("code:not-in", "http://example.org/vs/sugars")) == {"weight", "local"}
    assert found(client, "Observation", ("code:in", "http://example.org/vs/unknown")) == set()


def test_above_and_below_in_a_hierarchical_code_system(client: TestClient) -> None:
    def condition(id_: str, code: str) -> dict:
        return {"resourceType": "Condition", "id": id_, "subject": {"reference": "Patient/x"},
                "clinicalStatus": {"coding": [{"system": CLINICAL, "code": code}]}}

    load(client, condition("a", "active"), condition("r", "relapse"), condition("i", "inactive"), condition("s", "resolved"))
    assert found(client, "Condition", ("clinical-status:below", f"{CLINICAL}|active")) == {"a", "r"}
    assert found(client, "Condition", ("clinical-status:below", f"{CLINICAL}|inactive")) == {"i", "s"}
    assert found(client, "Condition", ("clinical-status:above", f"{CLINICAL}|relapse")) == {"a", "r"}
    assert found(client, "Condition", ("clinical-status", f"{CLINICAL}|active")) == {"a"}


def test_meta_tag_and_security(client: TestClient) -> None:
    load(client,
         {"resourceType": "Patient", "id": "tagged", "meta": {"tag": [{"system": "http://example.org/tags", "code": "vip"}],
                                                                "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}},
         {"resourceType": "Patient", "id": "plain"})
    assert found(client, "Patient", ("_tag", "http://example.org/tags|vip")) == {"tagged"}
    assert found(client, "Patient", ("_tag:not", "vip")) == {"plain"}
    assert found(client, "Patient", ("_security", "R")) == {"tagged"}
    assert found(client, "Patient", ("_tag:missing", "true")) == {"plain"}


def test_unknown_modifier_is_a_400(client: TestClient) -> None:
    outcome = rejected(client, "Patient", ("gender:exact", "male"))
    assert outcome["issue"][0]["expression"] == ["gender:exact"]
