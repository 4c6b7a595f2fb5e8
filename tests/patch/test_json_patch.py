"""JSON Patch: the official fhir-test-cases (r4/patch, RFC 6902 appendix) plus malformed patches."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ficus import fhirjson
from ficus.outcome import FhirError
from ficus.patch import apply_json_patch

CASES_FILE = Path(__file__).parent.parent / "fixtures" / "fhir-patch" / "json-patch-tests.json"


def _official_cases() -> list[Any]:
    return [
        pytest.param(case, id=case["comment"]) for case in fhirjson.decode(CASES_FILE.read_bytes())
    ]


@pytest.mark.parametrize("case", _official_cases())
def test_official_case(case: dict) -> None:
    original = copy.deepcopy(case["doc"])
    if "error" in case:
        with pytest.raises(FhirError) as raised:
            apply_json_patch(case["doc"], case["patch"])
        assert raised.value.status == 422
        assert raised.value.issues[0].code == "processing"
    else:
        assert apply_json_patch(case["doc"], case["patch"]) == case["expected"]
    assert case["doc"] == original


PATIENT = {
    "resourceType": "Patient",
    "active": True,
    "name": [{"given": ["Ann"]}],
    "multipleBirthInteger": 1,
}


def test_result_shares_nothing_with_the_input_or_the_patch() -> None:
    value = {"family": "Doe"}
    patched = apply_json_patch(PATIENT, [{"op": "add", "path": "/name/-", "value": value}])
    patched["name"][1]["family"] = "changed"
    patched["name"][0]["given"].append("Bo")
    assert value == {"family": "Doe"}
    assert PATIENT["name"] == [{"given": ["Ann"]}]


def test_move_copy_and_escapes() -> None:
    operations = [
        {"op": "copy", "from": "/name/0", "path": "/name/-"},
        {"op": "move", "from": "/name/1/given/0", "path": "/name/0/given/1"},
        {"op": "add", "path": "/a~1b~0c", "value": Decimal("1.50")},
    ]
    patched = apply_json_patch(PATIENT, operations)
    assert patched["name"] == [{"given": ["Ann", "Ann"]}, {"given": []}]
    assert str(patched["a/b~c"]) == "1.50"


def test_test_compares_as_json() -> None:
    assert apply_json_patch(
        PATIENT, [{"op": "test", "path": "/multipleBirthInteger", "value": Decimal("1.0")}]
    )
    for wrong in (True, "1", [1]):
        with pytest.raises(FhirError) as raised:
            apply_json_patch(
                PATIENT, [{"op": "test", "path": "/multipleBirthInteger", "value": wrong}]
            )
        assert raised.value.status == 422
    with pytest.raises(FhirError):
        apply_json_patch(PATIENT, [{"op": "test", "path": "/active", "value": 1}])


@pytest.mark.parametrize(
    ("operations", "status", "expression"),
    [
        ({"op": "add", "path": "/active", "value": False}, 400, None),
        ([{"op": "add", "path": "/x", "value": 1}, "remove"], 400, "/1"),
        ([{"path": "/active"}], 400, "/0"),
        ([{"op": "upsert", "path": "/active"}], 400, "/0"),
        ([{"op": "remove", "path": "active"}], 400, "/0"),
        ([{"op": "remove"}], 400, "/0"),
        ([{"op": "replace", "path": "/active"}], 400, "/0"),
        ([{"op": "move", "path": "/active"}], 400, "/0"),
        ([{"op": "remove", "path": "/gender"}], 422, "/0"),
        ([{"op": "replace", "path": "/gender", "value": "male"}], 422, "/0"),
        ([{"op": "add", "path": "/name/2", "value": {}}], 422, "/0"),
        ([{"op": "add", "path": "/name/01", "value": {}}], 422, "/0"),
        ([{"op": "remove", "path": "/name/-"}], 422, "/0"),
        ([{"op": "add", "path": "/active/x", "value": 1}], 422, "/0"),
        ([{"op": "move", "from": "/name", "path": "/name/0"}], 422, "/0"),
        ([{"op": "copy", "from": "/nothing", "path": "/x"}], 422, "/0"),
        ([{"op": "test", "path": "/active", "value": False}], 422, "/0"),
        ([{"op": "remove", "path": ""}], 422, None),
        ([{"op": "replace", "path": "", "value": [1]}], 422, None),
    ],
)
def test_bad_patches(operations: Any, status: int, expression: str | None) -> None:
    with pytest.raises(FhirError) as raised:
        apply_json_patch(PATIENT, operations)
    assert raised.value.status == status
    assert raised.value.issues[0].expression == expression


WEIRD: list[Any] = [
    None,
    0,
    True,
    "",
    "/",
    "~",
    "~2",
    "/-",
    "/name/-/x",
    "/name/1e0",
    "/name/٣",
    [],
    {},
    [None],
]


@pytest.mark.parametrize("weird", WEIRD)
def test_weird_documents_only_raise_fhir_errors(weird: Any) -> None:
    documents: list[Any] = [weird, [weird]]
    for op in ("add", "remove", "replace", "move", "copy", "test", weird):
        documents.append([{"op": op, "path": weird, "from": weird, "value": weird}])
        documents.append([{"op": op, "path": "/name/0", "from": weird, "value": weird}])
        documents.append([{"op": op, "path": weird, "from": "/name", "value": weird}])
    for document in documents:
        try:
            apply_json_patch(PATIENT, document)
        except FhirError as error:
            assert error.status in (400, 422)
