"""Index extraction: every R4 SearchParameter gets an extractor, compiled walkers agree with
FHIRPath, and values become the rows the search side expects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ficus import fhirjson
from ficus.spec import definitions
from ficus.store import ucum
from ficus.store.indexing import (
    _CONVERTERS,
    RESOURCE_COLUMN_PARAMETERS,
    IndexExtractor,
    _fhirpath_extractor,
    compile_expression,
    composite_layout,
    param_key,
    split_steps,
    split_union,
)

EXAMPLES = Path(__file__).parent.parent / "fixtures" / "fhir-r4-examples"
# Patient `part-agree` is an example parameter of the package whose expression is on DocumentReference.
SPEC_ERRORS = {("Patient", "part-agree")}


def test_every_search_parameter_with_an_expression_has_an_extractor() -> None:
    d = definitions()
    missing = []
    for res_type in sorted(d.resource_types):
        for param in d.search_parameters_for(res_type).values():
            if not param.expression or param.code in RESOURCE_COLUMN_PARAMETERS or (res_type, param.code) in SPEC_ERRORS:
                continue
            if not compile_expression(res_type, param.expression, d):
                missing.append((res_type, param.code))
    assert missing == []


def test_only_a_few_expressions_fall_back_to_fhirpath() -> None:
    extractor = IndexExtractor(definitions())
    for res_type in definitions().resource_types:
        extractor.plan(res_type)
    fallbacks = sorted((t, c) for t, s in extractor.stats.items() for c in s.fallback_parameters or [])
    compiled = sum(s.compiled for s in extractor.stats.values())
    assert compiled > 2200  # composites joined from their components' rows compile no walkers of their own
    assert fallbacks == []


def test_compiled_walkers_find_everything_fhirpath_finds() -> None:
    """Over the spec examples; where they differ fhirpathpy misses values (`Resource.meta`,
    choice types), never the walkers."""
    d = definitions()
    problems = []
    for path in sorted(EXAMPLES.glob("*.json"))[::3]:
        resource = fhirjson.decode(path.read_bytes())
        res_type = resource.get("resourceType")
        if res_type not in d.resource_types:
            continue
        for param in d.search_parameters_for(res_type).values():
            if param.type not in _CONVERTERS or param.code in RESOURCE_COLUMN_PARAMETERS or "resolve()" in param.expression:
                continue
            convert = _CONVERTERS[param.type]
            walked = {row for e in compile_expression(res_type, param.expression, d) for v in e(resource) for row in convert(v)}
            parts = [p for p in split_union(param.expression) if split_steps(p.lstrip("( "))[0] in (res_type, "Resource", "DomainResource")]
            evaluated = {row for p in parts if (e := _fhirpath_extractor(p)) for v in e(resource) for row in convert(v)}
            if not evaluated <= walked:
                problems.append((path.name, param.code, sorted(map(str, evaluated - walked))[:2]))
    assert problems == []


def test_param_key_is_stable() -> None:
    """Stored rows carry it: changing the hash would need a reindex."""
    assert param_key("Patient", "name") == 6751779007253615023
    assert param_key("Observation", "code") == -3933217871099117273


def test_rows_of_an_observation() -> None:
    resource = json.loads(json.dumps({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}], "text": "Blood sugar"},
        "subject": {"reference": "http://example.org/fhir/Patient/1/_history/2"},
        "effectivePeriod": {"start": "2020-01-01"},
        "valueQuantity": {"value": 5400, "system": "http://unitsofmeasure.org", "code": "mg"},
        "identifier": [{"system": "urn:s", "value": "v", "type": {"coding": [{"system": "urn:t", "code": "MR"}]}}],
    }))
    rows = IndexExtractor(definitions(), "http://example.org/fhir").rows("Observation", resource)
    by_param = {}
    for table, table_rows in rows.items():
        for row in table_rows:
            by_param.setdefault(row[0], []).append((table, row[3:]))
    assert set(by_param["code"]) == {("token", (None, None, "blood sugar")), ("token", ("http://loinc.org", "2345-7", "glucose"))}
    assert by_param["subject"] == [("reference", ("Patient", "1", "http://example.org/fhir/Patient/1/_history/2"))]
    assert by_param["date"][0][1][1] == 2**62
    assert by_param["value-quantity"] == [("quantity", (5400.0, "http://unitsofmeasure.org", "mg", None, 5.4, "g", 5400.0, 5.4))]
    assert by_param["identifier:of-type"] == [("token", ("urn:t", "MR", "v"))]
    elsewhere = IndexExtractor(definitions(), "http://ficus.example/fhir").rows("Observation", resource)
    foreign = [row[3:] for row in elsewhere["reference"] if row[0] == "subject"]
    assert foreign == [(None, None, "http://example.org/fhir/Patient/1/_history/2")], "another server's Patient/1"
    assert not [row for table_rows in rows.values() for row in table_rows if "$" in row[0]], "composites join, no copies"
    assert by_param["combo-value-quantity"] == [("quantity", by_param["value-quantity"][0][1])]
    groups = {row[0]: row[2] for table_rows in rows.values() for row in table_rows}
    assert groups["value-quantity"] == groups["code"] == groups["combo-code"] == 0, "the Observation is the element"


@pytest.mark.parametrize(("value", "code", "expected"), [
    (5.4, "mg", (0.0054, "g")),
    (1, "mg/dL", (10.0, "m-3.g")),
    (120, "mm[Hg]", (15998640.0, "m-1.s-2.g")),
    (37, "Cel", (310.15, "K")),
    (2, "h", (7200.0, "s")),
    (50, "%", (0.5, "1")),
    (1, "10*3/uL", (1e12, "m-3")),
    (1, "[IU]/mL", (1e6, "m-3.[IU]")),
    (1, "not-a-unit", None),
    (7, "[pH]", None),
])
def test_ucum_canonical(value: float, code: str, expected: tuple | None) -> None:
    found = ucum.canonical(value, code)
    if expected is None:
        assert found is None
    else:
        assert found is not None and found[1] == expected[1] and found[0] == pytest.approx(expected[0])


def test_composites_join_their_components_rows_where_the_paths_allow() -> None:
    d = definitions()
    observation = composite_layout(d, "Observation")
    assert observation.joined["component-code-value-quantity"] == ("component-code", "component-value-quantity")
    assert observation.joined["combo-code-value-quantity"] == ("combo-code", "combo-value-quantity")
    # a component whose path is not one of its parameter's own paths keeps copies under `code$i`
    assert "characteristic-value" not in composite_layout(d, "Group").joined  # `value` vs `value as T`
    assert "relationship" not in composite_layout(d, "DocumentReference").joined
    assert "chromosome-variant-coordinate" not in composite_layout(d, "MolecularSequence").joined  # %resource
    rows = IndexExtractor(d).rows("Group", {
        "resourceType": "Group", "type": "person", "actual": True,
        "characteristic": [{"code": {"text": "smoker"}, "valueBoolean": True, "exclude": False}]})
    copies = sorted((row[0], row[2]) for row in rows["token"] if "$" in row[0])
    assert copies == [("characteristic-value$0", 0), ("characteristic-value$1", 0)]


def test_component_rows_are_numbered_by_element() -> None:
    resource = {
        "resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/p"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": {"value": 120}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}, "valueQuantity": {"value": 80}},
        ],
    }
    rows = IndexExtractor(definitions()).rows("Observation", resource)
    numbered = {(row[0], row[2], row[4]) for row in rows["token"]} | {(row[0], row[2], row[3]) for row in rows["quantity"]}
    assert numbered >= {
        ("combo-code", 0, "85354-9"), ("combo-code", 1, "8480-6"), ("combo-code", 2, "8462-4"),
        ("component-code", 1, "8480-6"), ("component-code", 2, "8462-4"),
        ("combo-value-quantity", 1, 120.0), ("combo-value-quantity", 2, 80.0),
        ("component-value-quantity", 1, 120.0), ("component-value-quantity", 2, 80.0),
    }
    assert {row[2] for row in rows["token"] if row[0] == "code"} == {0}
    assert {row[2] for row in rows["reference"]} == {None}, "parameters no composite uses have no grp"
