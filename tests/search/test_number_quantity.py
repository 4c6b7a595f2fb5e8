"""number and quantity search: implicit precision, prefixes, Range targets, UCUM canonical units."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from . import found, load, rejected

UCUM = "http://unitsofmeasure.org"


def risk(id_: str, probability: object) -> dict:
    prediction = {"probabilityRange": probability} if isinstance(probability, dict) else {"probabilityDecimal": probability}
    return {"resourceType": "RiskAssessment", "id": id_, "status": "final", "subject": {"reference": "Patient/x"},
            "prediction": [prediction]}


@pytest.fixture
def risks(client: TestClient) -> None:
    load(client, risk("r100", 100), risk("r100.4", 100.4), risk("r99", 99), risk("r0.5", 0.5),
         risk("range", {"low": {"value": 20}, "high": {"value": 30}}))


PROBABILITY_CASES = [
    ("100", {"r100", "r100.4"}),
    ("100.0", {"r100"}),
    ("1e2", {"r100", "r100.4", "r99"}),
    ("ne100", {"r99", "r0.5", "range"}),
    ("gt100", {"r100.4"}),
    ("ge100", {"r100", "r100.4"}),
    ("lt100", {"r99", "r0.5", "range"}),
    ("le99", {"r99", "r0.5", "range"}),
    ("ap100", {"r100", "r100.4", "r99"}),
    ("25", set()),
    ("gt25", {"r100", "r100.4", "r99", "range"}),
    ("lt25", {"r0.5", "range"}),
    ("sa25", {"r100", "r100.4", "r99"}),
    ("eb25", {"r0.5"}),
    ("ap25", {"range"}),
    ("0.5,99", {"r0.5", "r99"}),
]


def test_number_prefixes_and_precision(client: TestClient, risks: None) -> None:
    for value, expected in PROBABILITY_CASES:
        assert found(client, "RiskAssessment", ("probability", value)) == expected, value


def vital(id_: str, value: float, code: str, system: str | None = UCUM, unit: str | None = None) -> dict:
    quantity: dict = {"value": value, "code": code, "unit": unit or code}
    if system:
        quantity["system"] = system
    return {"resourceType": "Observation", "id": id_, "status": "final", "code": {"text": "x"}, "valueQuantity": quantity}


@pytest.fixture
def quantities(client: TestClient) -> None:
    load(client,
         vital("mg", 5400, "mg"),
         vital("g", 5.4, "g"),
         vital("kg", 0.0054, "kg"),
         vital("other", 5.4, "g", system="http://example.org/units"),
         vital("text-only", 5.4, "grams", system=None, unit="grams"),
         vital("temperature", 37, "Cel"),
         vital("mmol", 5.4, "mmol/L"))


def test_ucum_units_compare_across_prefixes(client: TestClient, quantities: None) -> None:
    assert found(client, "Observation", ("value-quantity", f"5.4|{UCUM}|g")) == {"mg", "g", "kg"}
    assert found(client, "Observation", ("value-quantity", f"5400|{UCUM}|mg")) == {"mg", "g", "kg"}
    assert found(client, "Observation", ("value-quantity", f"gt5|{UCUM}|g")) == {"mg", "g", "kg"}
    assert found(client, "Observation", ("value-quantity", f"lt5|{UCUM}|g")) == set()
    assert found(client, "Observation", ("value-quantity", f"le5500|{UCUM}|mg")) == {"mg", "g", "kg"}
    assert found(client, "Observation", ("value-quantity", f"5.4|{UCUM}|mmol/L")) == {"mmol"}
    assert found(client, "Observation", ("value-quantity", f"5.4|{UCUM}|m")) == set()
    assert found(client, "Observation", ("value-quantity", f"98.6|{UCUM}|[degF]")) == {"temperature"}


def test_other_systems_codes_and_units(client: TestClient, quantities: None) -> None:
    assert found(client, "Observation", ("value-quantity", "5.4|http://example.org/units|g")) == {"other"}
    assert found(client, "Observation", ("value-quantity", "5.4||grams")) == {"text-only"}
    assert found(client, "Observation", ("value-quantity", "5.4||g")) == {"g", "other"}
    assert found(client, "Observation", ("value-quantity", "5.4")) == {"g", "other", "text-only", "mmol"}
    assert found(client, "Observation", ("value-quantity", "ap5400")) == {"mg"}


def test_malformed_quantities_are_a_400(client: TestClient) -> None:
    for value in ("five", "5|a|b|c", "gt|http://unitsofmeasure.org|mg"):
        outcome = rejected(client, "Observation", ("value-quantity", value))
        assert outcome["issue"][0]["expression"] == ["value-quantity"]
