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
    assert compiled > 2500
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
    assert {row[0] for row in rows["quantity"]} >= {"code-value-quantity$1", "combo-code-value-quantity$1"}


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
