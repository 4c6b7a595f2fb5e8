"""_id, _list, near, :missing on every type, escaping, and which names count as known."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from ficus.search.query import is_known_parameter
from ficus.spec import definitions

from . import found, load, rejected


def test_id(client: TestClient) -> None:
    load(client, *({"resourceType": "Patient", "id": i} for i in ("a", "b", "c")))
    assert found(client, "Patient", ("_id", "a,c,zzz")) == {"a", "c"}
    assert found(client, "Patient", ("_id", "b")) == {"b"}
    assert found(client, "Patient", ("_id:not", "b")) == {"a", "c"}


def test_list(client: TestClient) -> None:
    load(client,
         *({"resourceType": "Patient", "id": i} for i in ("a", "b", "c")),
         {"resourceType": "Observation", "id": "b", "status": "final", "code": {"text": "x"}},
         {"resourceType": "List", "id": "ward", "status": "current", "mode": "working",
          "entry": [{"item": {"reference": "Patient/a"}}, {"item": {"reference": "Patient/b"}},
                    {"item": {"reference": "Observation/b"}}]},
         {"resourceType": "List", "id": "other", "status": "current", "mode": "working",
          "entry": [{"item": {"reference": "Patient/c"}}]})
    assert found(client, "Patient", ("_list", "ward")) == {"a", "b"}
    assert found(client, "Observation", ("_list", "ward")) == {"b"}
    assert found(client, "Patient", ("_list", "ward,other")) == {"a", "b", "c"}
    assert found(client, "Patient", ("_list", "none")) == set()


def test_near(client: TestClient) -> None:
    def location(id_: str, latitude: float, longitude: float) -> dict:
        return {"resourceType": "Location", "id": id_, "position": {"latitude": latitude, "longitude": longitude}}

    load(client, location("amsterdam", 52.3676, 4.9041), location("haarlem", 52.3874, 4.6462),
         location("utrecht", 52.0907, 5.1214), {"resourceType": "Location", "id": "nowhere"})
    assert found(client, "Location", ("near", "52.37|4.90|5|km")) == {"amsterdam"}
    assert found(client, "Location", ("near", "52.37|4.90|25|km")) == {"amsterdam", "haarlem"}
    assert found(client, "Location", ("near", "52.37|4.90|50")) == {"amsterdam", "haarlem", "utrecht"}
    assert found(client, "Location", ("near", "52.37|4.90|3|[mi_i]")) == {"amsterdam"}
    assert found(client, "Location", ("near:missing", "true")) == {"nowhere"}
    rejected(client, "Location", ("near", "52.37"))


def test_missing_on_each_type(client: TestClient) -> None:
    load(client,
         {"resourceType": "Observation", "id": "full", "status": "final", "code": {"text": "x"},
          "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2020-01-01",
          "valueQuantity": {"value": 1}, "focus": [{"reference": "Patient/p"}]},
         {"resourceType": "Observation", "id": "bare", "status": "final", "code": {"text": "x"}})
    for name in ("subject", "date", "value-quantity", "focus", "code-value-quantity"):
        assert found(client, "Observation", (f"{name}:missing", "false")) == {"full"}, name
        assert found(client, "Observation", (f"{name}:missing", "true")) == {"bare"}, name
    rejected(client, "Observation", ("subject:missing", "maybe"))


def test_escaped_separators(client: TestClient) -> None:
    load(client,
         {"resourceType": "Patient", "id": "pipe", "identifier": [{"system": "urn:sys", "value": "a|b"}]},
         {"resourceType": "Patient", "id": "dollar", "identifier": [{"value": "x$y,z"}]})
    assert found(client, "Patient", ("identifier", "urn:sys|a\\|b")) == {"pipe"}
    assert found(client, "Patient", ("identifier", "x$y\\,z")) == {"dollar"}
    assert found(client, "Patient", ("identifier", "x\\$y\\,z")) == {"dollar"}


@pytest.mark.parametrize(("res_type", "name", "known"), [
    ("Patient", "name", True),
    ("Patient", "name:exact", True),
    ("Patient", "name:below", False),
    ("Patient", "_id", True),
    ("Patient", "_lastUpdated", True),
    ("Patient", "_tag", True),
    ("Patient", "_profile", True),
    ("Patient", "_security", True),
    ("Patient", "_source", True),
    ("Patient", "_list", True),
    ("Patient", "_has", True),
    ("Patient", "_has:Observation:patient:code", True),
    ("Patient", "_has:Observation:patient:nonsense", False),
    ("Patient", "_has:Observation", False),
    ("Observation", "subject:Patient.name", True),
    ("Observation", "subject.name", True),
    ("Observation", "subject:Medication.name", False),
    ("Observation", "code.name", False),
    ("Observation", "component-code-value-quantity", True),
    ("Location", "near", True),
    ("Patient", "nonsense", False),
    ("Patient", "_text", False),
    ("Patient", "_content", False),
    ("Patient", "_query", False),
    ("Patient", "gender:text", True),
    ("Observation", "subject:Patient", True),
    ("Observation", "subject:identifier", True),
])
def test_is_known_parameter(res_type: str, name: str, known: bool) -> None:
    assert is_known_parameter(definitions(), res_type, name) is known
