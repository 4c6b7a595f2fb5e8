"""FHIRPath Patch: the official fhir-test-cases (r4/patch) plus malformed and unusual patches."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ficus.outcome import FhirError
from ficus.patch import apply_fhirpath_patch

from .fhir_xml import FHIR, resource_from_xml

CASES_FILE = Path(__file__).parent.parent / "fixtures" / "fhir-patch" / "fhir-patch-tests.xml"


def _official_cases() -> list[Any]:
    """Every case of the file: none needs skipping."""
    return [
        pytest.param(case, id=case.attrib["name"])
        for case in ET.parse(CASES_FILE).getroot().iter("case")
    ]


def _resource_in(case: ET.Element, section: str) -> dict:
    (resource,) = [child for child in case.find(section) if child.tag.startswith(FHIR)]
    return resource_from_xml(resource)


@pytest.mark.parametrize("case", _official_cases())
def test_official_case(case: ET.Element) -> None:
    resource = _resource_in(case, "input")
    parameters = _resource_in(case, "diff")
    original = copy.deepcopy(resource)
    if case.find("error") is not None:
        with pytest.raises(FhirError) as raised:
            apply_fhirpath_patch(resource, parameters)
        assert raised.value.status == 422
    else:
        assert apply_fhirpath_patch(resource, parameters) == _resource_in(case, "output")
    assert resource == original


def operation(kind: str, path: str, **parts: Any) -> dict:
    """An `operation` parameter: `value` is a dict with value[x] or `part`; other parts typed."""
    found = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    for name, value in parts.items():
        if name == "value":
            found.append({"name": "value", **value})
        elif name == "name":
            found.append({"name": "name", "valueString": value})
        else:
            found.append({"name": name, "valueInteger": value})
    return {"name": "operation", "part": found}


def patch(*operations: dict) -> dict:
    return {"resourceType": "Parameters", "parameter": list(operations)}


PATIENT = {
    "resourceType": "Patient",
    "birthDate": "1920-01-01",
    "_birthDate": {"extension": [{"url": "http://example.org/time", "valueTime": "10:00:00"}]},
    "name": [{"family": "Doe", "given": ["Ann", "Bo"], "_given": [None, {"id": "bo"}]}],
    "identifier": [{"use": "official", "value": "1"}, {"value": "2"}],
    "deceasedBoolean": False,
}


def test_result_shares_nothing_with_the_input_or_the_patch() -> None:
    value = {"valueIdentifier": {"system": "http://example.org", "value": "3"}}
    parameters = patch(operation("add", "Patient", name="identifier", value=value))
    patched = apply_fhirpath_patch(PATIENT, parameters)
    patched["identifier"][2]["value"] = "changed"
    patched["name"][0]["given"].append("Cy")
    assert value["valueIdentifier"]["value"] == "3"
    assert PATIENT["name"][0]["given"] == ["Ann", "Bo"]


def test_decimal_stays_decimal() -> None:
    value = {"valueDecimal": Decimal("72.50")}
    parameters = patch(
        operation(
            "add",
            "Patient",
            name="extension",
            value={
                "part": [
                    {"name": "url", "valueUri": "http://example.org/weight"},
                    {"name": "value", **value},
                ]
            },
        )
    )
    extension = apply_fhirpath_patch(PATIENT, parameters)["extension"]
    assert extension == [{"url": "http://example.org/weight", "valueDecimal": Decimal("72.50")}]
    assert str(extension[0]["valueDecimal"]) == "72.50"


def test_primitive_extensions_follow_their_values() -> None:
    moved = apply_fhirpath_patch(
        PATIENT, patch(operation("move", "Patient.name.given", source=1, destination=0))
    )
    assert moved["name"][0]["given"] == ["Bo", "Ann"]
    assert moved["name"][0]["_given"] == [{"id": "bo"}, None]
    deleted = apply_fhirpath_patch(PATIENT, patch(operation("delete", "Patient.name.given[1]")))
    assert deleted["name"][0] == {"family": "Doe", "given": ["Ann"]}
    extension_gone = apply_fhirpath_patch(
        PATIENT, patch(operation("delete", "Patient.birthDate.extension"))
    )
    assert "_birthDate" not in extension_gone and extension_gone["birthDate"] == "1920-01-01"


def test_add_extension_to_a_primitive() -> None:
    value = {
        "part": [
            {"name": "url", "valueUri": "http://example.org/x"},
            {"name": "value", "valueString": "y"},
        ]
    }
    patched = apply_fhirpath_patch(
        PATIENT, patch(operation("add", "Patient.name.given[0]", name="extension", value=value))
    )
    assert patched["name"][0]["_given"] == [
        {"extension": [{"url": "http://example.org/x", "valueString": "y"}]},
        {"id": "bo"},
    ]


def test_choice_elements_take_the_type_of_their_value() -> None:
    replaced = apply_fhirpath_patch(
        PATIENT, patch(operation("replace", "Patient.deceased", value={"valueDateTime": "2020"}))
    )
    assert "deceasedBoolean" not in replaced and replaced["deceasedDateTime"] == "2020"
    added = apply_fhirpath_patch(
        PATIENT, patch(operation("add", "Patient", name="multipleBirth", value={"valueInteger": 2}))
    )
    assert added["multipleBirthInteger"] == 2


def test_elements_found_without_an_instance_path() -> None:
    resource = {**PATIENT, "extension": [{"url": "http://example.org/a", "valueString": "a"}]}
    path = "Patient.extension('http://example.org/a')"
    assert apply_fhirpath_patch(resource, patch(operation("delete", path))) == PATIENT


def test_too_deep_a_value_is_a_fhir_error() -> None:
    value: dict = {"name": "text", "valueString": "x"}
    for _ in range(2000):
        value = {"name": "text", "part": [value]}
    parameters = patch(operation("add", "Patient", name="contact", value={"part": [value]}))
    with pytest.raises(FhirError) as raised:
        apply_fhirpath_patch(PATIENT, parameters)
    assert raised.value.status == 400
    assert "nested too deeply" in str(raised.value)


def test_delete_of_nothing_is_not_an_error() -> None:
    assert apply_fhirpath_patch(PATIENT, patch(operation("delete", "Patient.gender"))) == PATIENT


@pytest.mark.parametrize(
    ("parameters", "status", "expression"),
    [
        ({"resourceType": "Patient"}, 400, None),
        ([], 400, None),
        ({"resourceType": "Parameters", "parameter": {}}, 400, "Parameters.parameter"),
        (patch({"name": "op"}), 400, "Parameters.parameter[0]"),
        (
            patch(
                operation("delete", "Patient.gender"),
                {"name": "operation", "part": [{"name": "path"}]},
            ),
            400,
            "Parameters.parameter[1]",
        ),
        (patch(operation("upsert", "Patient.gender")), 400, "Parameters.parameter[0]"),
        (patch(operation("replace", "Patient.gender")), 400, "Parameters.parameter[0]"),
        (patch(operation("replace", "Patient.gender", value={})), 400, "Parameters.parameter[0]"),
        (
            patch(operation("insert", "Patient.identifier", index=-1, value={"valueString": "x"})),
            400,
            "Parameters.parameter[0]",
        ),
        (patch(operation("delete", "Patient..name")), 400, "Parameters.parameter[0]"),
        (patch(operation("delete", "Patient.name.count()")), 400, "Parameters.parameter[0]"),
        (
            patch(operation("delete", "Patient.name.nosuchfunction()")),
            400,
            "Parameters.parameter[0]",
        ),
        (
            patch(
                operation("delete", "Patient.gender"),
                operation("replace", "Patient.gender", value={"valueCode": "male"}),
            ),
            422,
            "Parameters.parameter[1]",
        ),
        (
            patch(operation("replace", "Patient.identifier", value={"valueString": "x"})),
            422,
            "Parameters.parameter[0]",
        ),
        (patch(operation("delete", "Patient.identifier")), 422, "Parameters.parameter[0]"),
        (patch(operation("delete", "Patient")), 422, "Parameters.parameter[0]"),
        (
            patch(operation("add", "Patient", name="birthDate", value={"valueDate": "1930"})),
            422,
            "Parameters.parameter[0]",
        ),
        (
            patch(operation("add", "Patient", name="nonsense", value={"valueDate": "1930"})),
            422,
            "Parameters.parameter[0]",
        ),
        (
            patch(operation("insert", "Patient.identifier", index=3, value={"valueString": "x"})),
            422,
            "Parameters.parameter[0]",
        ),
        (
            patch(
                operation("insert", "Patient.identifier[0]", index=0, value={"valueString": "x"})
            ),
            422,
            "Parameters.parameter[0]",
        ),
        (
            patch(operation("move", "Patient.identifier", source=0, destination=2)),
            422,
            "Parameters.parameter[0]",
        ),
        (
            patch(operation("move", "Patient.birthDate", source=0, destination=0)),
            422,
            "Parameters.parameter[0]",
        ),
    ],
)
def test_bad_patches(parameters: Any, status: int, expression: str | None) -> None:
    with pytest.raises(FhirError) as raised:
        apply_fhirpath_patch(PATIENT, parameters)
    assert raised.value.status == status
    assert raised.value.issues[0].expression == expression
    assert raised.value.issues[0].code in (
        ("invalid", "structure") if status == 400 else ("processing",)
    )


WEIRD_VALUES: list[Any] = [
    None,
    0,
    True,
    "",
    "x",
    [],
    {},
    [None],
    {"name": None},
    {"name": 1},
    {"name": []},
    {"part": {}},
    {"part": [None]},
    {"part": [{"name": ["type"]}]},
    Decimal("1.5"),
    {"valueString": None},
]
WEIRD_PATHS = [
    "",
    " ",
    "(",
    "Patient.",
    "[0]",
    "%resource",
    "%nothing",
    "1 / 0",
    "Patient.name[-1]",
    "Patient.name.given.first()",
    "Patient.children()",
    "descendants()",
    "Patient.name | Patient.name",
    "Patient.extension('x')",
    "'text'",
    "{}",
    "Patient.name.where(",
    "Patient.name.given.substring('a')",
]


@pytest.mark.parametrize("path", WEIRD_PATHS)
@pytest.mark.parametrize("kind", ["add", "insert", "delete", "replace", "move"])
def test_weird_paths_only_raise_fhir_errors(kind: str, path: str) -> None:
    parts = {
        "name": "extension",
        "value": {"valueString": "x"},
        "index": 0,
        "source": 0,
        "destination": 0,
    }
    try:
        apply_fhirpath_patch(PATIENT, patch(operation(kind, path, **parts)))
    except FhirError as error:
        assert error.status in (400, 422)


@pytest.mark.parametrize("weird", WEIRD_VALUES)
def test_weird_documents_only_raise_fhir_errors(weird: Any) -> None:
    documents = [
        weird,
        {"resourceType": "Parameters", "parameter": weird},
        patch(weird),
        patch({"name": "operation", "part": weird}),
        patch({"name": "operation", "part": [weird]}),
        patch({"name": "operation", "part": [{"name": "type", "valueCode": "add"}, weird]}),
        patch(
            operation(
                "replace", "Patient.birthDate", value=weird if isinstance(weird, dict) else {}
            )
        ),
        patch(operation("add", "Patient", name="contact", value={"part": weird})),
    ]
    for document in documents:
        try:
            apply_fhirpath_patch(PATIENT, document)
        except FhirError as error:
            assert error.status in (400, 422)
    for resource in (weird, {"resourceType": weird}):
        try:
            apply_fhirpath_patch(resource, patch(operation("delete", "Patient.gender")))
        except FhirError as error:
            assert error.status == 422
