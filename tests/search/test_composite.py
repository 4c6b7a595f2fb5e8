"""composite search: both parts must match on the same element."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from . import found, load, rejected

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"


def pressure(id_: str, systolic: float, diastolic: float) -> dict:
    def component(code: str, value: float) -> dict:
        return {"code": {"coding": [{"system": LOINC, "code": code}]},
                "valueQuantity": {"value": value, "system": UCUM, "code": "mm[Hg]", "unit": "mmHg"}}

    return {"resourceType": "Observation", "id": id_, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "component": [component(SYSTOLIC, systolic), component(DIASTOLIC, diastolic)]}


@pytest.fixture
def observations(client: TestClient) -> None:
    load(
        client,
        pressure("high", 150, 95),
        pressure("normal", 120, 80),
        {"resourceType": "Observation", "id": "glucose", "status": "final",
         "code": {"coding": [{"system": LOINC, "code": "2345-7"}]},
         "valueQuantity": {"value": 6.3, "system": UCUM, "code": "mmol/L"}},
        {"resourceType": "Observation", "id": "smoker", "status": "final",
         "code": {"coding": [{"system": LOINC, "code": "72166-2"}]},
         "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "77176002"}]}},
        {"resourceType": "Observation", "id": "onset", "status": "final",
         "code": {"coding": [{"system": LOINC, "code": "11368-8"}]}, "valueDateTime": "2019-05-01"},
        {"resourceType": "Observation", "id": "note", "status": "final",
         "code": {"coding": [{"system": LOINC, "code": "8251-1"}]}, "valueString": "Feeling better"},
    )


def test_component_code_and_value_match_on_the_same_component(client: TestClient, observations: None) -> None:
    assert found(client, "Observation", ("component-code-value-quantity", f"{LOINC}|{SYSTOLIC}$gt140")) == {"high"}
    assert found(client, "Observation", ("component-code-value-quantity", f"{LOINC}|{SYSTOLIC}$gt100")) == {"high", "normal"}
    # "high" has a value above 100 (systolic 150), but not in its diastolic component
    assert found(client, "Observation", ("component-code-value-quantity", f"{DIASTOLIC}$gt100")) == set()
    assert found(client, "Observation", ("component-code-value-quantity", f"{DIASTOLIC}$gt90|{UCUM}|mm[Hg]")) == {"high"}
    assert found(client, "Observation", ("component-code-value-quantity", f"{DIASTOLIC}$lt90,{SYSTOLIC}$gt140")) == {"high", "normal"}


def test_observation_level_composites(client: TestClient, observations: None) -> None:
    assert found(client, "Observation", ("code-value-quantity", f"{LOINC}|2345-7$gt6|{UCUM}|mmol/L")) == {"glucose"}
    assert found(client, "Observation", ("code-value-quantity", f"{LOINC}|2345-7$lt6")) == set()
    assert found(client, "Observation", ("code-value-quantity", f"{SYSTOLIC}$gt100")) == set()
    assert found(client, "Observation", ("code-value-concept", "72166-2$http://snomed.info/sct|77176002")) == {"smoker"}
    assert found(client, "Observation", ("code-value-concept", "72166-2$8517006")) == set()
    assert found(client, "Observation", ("code-value-date", "11368-8$2019")) == {"onset"}
    assert found(client, "Observation", ("code-value-date", "11368-8$gt2020")) == set()
    assert found(client, "Observation", ("code-value-string", "8251-1$feeling")) == {"note"}


def test_combo_covers_the_observation_and_its_components(client: TestClient, observations: None) -> None:
    assert found(client, "Observation", ("combo-code-value-quantity", f"{SYSTOLIC}$gt140")) == {"high"}
    assert found(client, "Observation", ("combo-code-value-quantity", "2345-7$gt6")) == {"glucose"}


def test_wrong_number_of_parts_is_a_400(client: TestClient, observations: None) -> None:
    outcome = rejected(client, "Observation", ("code-value-quantity", "2345-7"))
    assert outcome["issue"][0]["expression"] == ["code-value-quantity"]


def test_group_characteristic_value(client: TestClient) -> None:
    load(client, {"resourceType": "Group", "id": "g", "type": "person", "actual": True, "characteristic": [
        {"code": {"text": "gender"}, "valueCodeableConcept": {"coding": [{"code": "female"}]}, "exclude": False},
        {"code": {"coding": [{"code": "smoker"}]}, "valueBoolean": True, "exclude": False}]})
    assert found(client, "Group", ("characteristic-value", "smoker$true")) == {"g"}
    assert found(client, "Group", ("characteristic-value", "smoker$female")) == set()
