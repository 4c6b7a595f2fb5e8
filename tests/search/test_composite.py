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


def test_combo_tells_the_observation_from_its_components(client: TestClient) -> None:
    """The same code on the Observation (value 5) and on a component (value 50): each value
    pairs only with the code of its own element."""
    load(client, {"resourceType": "Observation", "id": "both", "status": "final",
                  "code": {"coding": [{"system": LOINC, "code": SYSTOLIC}]},
                  "valueQuantity": {"value": 5, "system": UCUM, "code": "mm[Hg]"},
                  "component": [{"code": {"coding": [{"system": LOINC, "code": DIASTOLIC}]},
                                 "valueQuantity": {"value": 500, "system": UCUM, "code": "mm[Hg]"}},
                                {"code": {"coding": [{"system": LOINC, "code": SYSTOLIC}]},
                                 "valueQuantity": {"value": 50, "system": UCUM, "code": "mm[Hg]"}}]})
    assert found(client, "Observation", ("combo-code-value-quantity", f"{SYSTOLIC}$lt10")) == {"both"}
    assert found(client, "Observation", ("combo-code-value-quantity", f"{SYSTOLIC}$gt40")) == {"both"}
    assert found(client, "Observation", ("combo-code-value-quantity", f"{SYSTOLIC}$gt100")) == set()
    assert found(client, "Observation", ("combo-code-value-quantity", f"{DIASTOLIC}$gt100")) == {"both"}
    assert found(client, "Observation", ("component-code-value-quantity", f"{SYSTOLIC}$lt10")) == set()
    assert found(client, "Observation", ("component-code-value-quantity", f"{SYSTOLIC}$eq50")) == {"both"}
    assert found(client, "Observation", ("code-value-quantity", f"{SYSTOLIC}$gt40")) == set()
    assert found(client, "Observation", ("code-value-quantity", f"{SYSTOLIC}$eq5")) == {"both"}


def test_missing_and_updates_of_a_joined_composite(client: TestClient, observations: None) -> None:
    present = found(client, "Observation", ("component-code-value-quantity:missing", "false"))
    assert present == {"high", "normal"}
    assert found(client, "Observation", ("component-code-value-quantity:missing", "true")) == {
        "glucose", "smoker", "onset", "note"}
    # a component without a value pairs with nothing: the Observation has no complete element
    half = pressure("high", 150, 95)
    del half["component"][0]["valueQuantity"]
    half["component"] = half["component"][:1]
    load(client, half)
    assert found(client, "Observation", ("component-code-value-quantity", f"{SYSTOLIC}$gt140")) == set()
    assert found(client, "Observation", ("component-code-value-quantity:missing", "false")) == {"normal"}


def test_use_context_composites(client: TestClient) -> None:
    """`context-type-value` and `context-type-quantity` pair a useContext's code with its own value."""
    context = "http://terminology.hl7.org/CodeSystem/usage-context-type"
    load(client, {"resourceType": "ValueSet", "id": "vs", "status": "active", "useContext": [
        {"code": {"system": context, "code": "focus"}, "valueCodeableConcept": {"coding": [{"code": "diabetes"}]}},
        {"code": {"system": context, "code": "age"}, "valueRange": {"low": {"value": 18}, "high": {"value": 65}}},
        {"code": {"system": context, "code": "venue"}, "valueCodeableConcept": {"coding": [{"code": "clinic"}]}}]})
    assert found(client, "ValueSet", ("context-type-value", "focus$diabetes")) == {"vs"}
    assert found(client, "ValueSet", ("context-type-value", "focus$clinic")) == set()
    assert found(client, "ValueSet", ("context-type-quantity", "age$gt60")) == {"vs"}
    assert found(client, "ValueSet", ("context-type-quantity", "age$gt70")) == set()
    assert found(client, "ValueSet", ("context-type-quantity", "focus$gt60")) == set()
