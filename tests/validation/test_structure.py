"""Structural validation: each rule rejects bad input at the right place, valid input passes."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from ficus import fhirjson
from ficus.spec import Definitions, load_tables
from ficus.validation import structure
from ficus.validation.structure import validate_resource

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EXAMPLES = FIXTURES / "fhir-r4-examples"
KNOWN_INVALID = FIXTURES / "known-invalid-examples.json"

NARRATIVE = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Peter</div>'}
GENDER_VS = "http://hl7.org/fhir/ValueSet/administrative-gender"
CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"


def errors(resource: object) -> list[tuple[str, str | None]]:
    return [(issue.code, issue.expression) for issue in validate_resource(resource)]


def patient(**elements: object) -> dict:
    return {"resourceType": "Patient", **elements}


def test_issues_are_errors_with_diagnostics():
    (issue,) = validate_resource(patient(gender="robot"))
    assert issue.severity == "error"
    assert "robot" in issue.diagnostics


def test_a_rich_valid_patient_passes():
    resource = patient(
        id="example-1.a",
        meta={"versionId": "1", "lastUpdated": "2024-05-01T10:00:00.123+02:00"},
        text=NARRATIVE,
        identifier=[{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}],
        active=True,
        name=[{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}],
        telecom=[{"system": "phone", "value": "(03) 5555 6473", "rank": 1}],
        gender="male",
        birthDate="1974-12-25",
        _birthDate={"extension": [{"url": "http://example.org/time", "valueTime": "14:35:45"}]},
        deceasedBoolean=False,
        multipleBirthInteger=2,
        contact=[{"relationship": [{"text": "partner"}], "name": {"family": "du Marché"}}],
        communication=[{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr"}]}}],
        managingOrganization={"reference": "Organization/1"},
        extension=[
            {
                "url": "http://example.org/nested",
                "extension": [{"url": "part", "valueDecimal": Decimal("1.50")}],
            }
        ],
    )
    assert errors(resource) == []


def test_decoded_json_with_decimals_passes():
    body = b'{"resourceType":"Observation","status":"final","code":{"text":"weight"},'
    body += b'"valueQuantity":{"value":72.50,"unit":"kg"}}'
    assert errors(fhirjson.decode(body)) == []


# resourceType


def test_resource_must_be_an_object():
    assert errors([]) == [("structure", None)]


def test_resource_type_is_required():
    assert errors({"id": "1"}) == [("required", "resourceType")]


@pytest.mark.parametrize("resource_type", ["Patients", "DomainResource", "Resource", 7])
def test_resource_type_must_be_a_concrete_resource(resource_type):
    assert errors({"resourceType": resource_type}) == [("structure", "resourceType")]


def test_resource_type_is_only_allowed_at_resource_roots():
    resource = patient(name=[{"resourceType": "HumanName", "family": "X"}])
    assert errors(resource) == [("structure", "Patient.name[0].resourceType")]


# unknown elements


def test_unknown_element_is_rejected():
    assert errors(patient(nickname="Pete")) == [("structure", "Patient.nickname")]


def test_unknown_element_in_a_datatype_is_rejected():
    resource = patient(name=[{"family": "X"}, {"family": "Y", "middle": "Z"}])
    assert errors(resource) == [("structure", "Patient.name[1].middle")]


def test_unknown_element_in_a_backbone_element_is_rejected():
    resource = patient(contact=[{"name": {"family": "X"}, "phone": "123"}])
    assert errors(resource) == [("structure", "Patient.contact[0].phone")]


def test_unexpanded_choice_name_is_unknown():
    resource = patient(**{"deceased[x]": True})
    assert errors(resource) == [("structure", "Patient.deceased[x]")]


# cardinality and JSON shape


def test_repeating_element_must_be_an_array():
    assert errors(patient(name={"family": "X"})) == [("structure", "Patient.name")]


def test_repeating_element_must_not_be_an_empty_array():
    assert errors(patient(name=[])) == [("structure", "Patient.name")]


def test_single_element_must_not_be_an_array():
    assert errors(patient(gender=["male"])) == [("structure", "Patient.gender")]


def test_single_element_must_not_be_null():
    assert errors(patient(gender=None)) == [("structure", "Patient.gender")]


def test_null_in_an_array_needs_an_aligned_extension():
    resource = patient(name=[{"given": ["Peter", None]}])
    assert errors(resource) == [("structure", "Patient.name[0].given[1]")]


def test_null_in_an_array_of_datatypes_is_rejected():
    resource = patient(name=[{"family": "X"}, None])
    assert errors(resource) == [("structure", "Patient.name[1]")]


def test_element_must_not_be_an_empty_object():
    assert errors(patient(maritalStatus={})) == [("structure", "Patient.maritalStatus")]


def test_datatype_must_be_an_object():
    assert errors(patient(maritalStatus="married")) == [("structure", "Patient.maritalStatus")]


def test_required_element_is_reported():
    resource = {"resourceType": "Observation", "code": {"text": "x"}}
    assert errors(resource) == [("required", "Observation.status")]


def test_required_element_in_a_datatype_is_reported():
    resource = patient(text={"div": NARRATIVE["div"]})
    assert errors(resource) == [("required", "Patient.text.status")]


def test_required_element_in_a_backbone_element_is_reported():
    resource = patient(link=[{"type": "seealso"}])
    assert errors(resource) == [("required", "Patient.link[0].other")]


def test_required_primitive_may_be_present_as_extension_only():
    absent = {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason"}
    resource = {
        "resourceType": "Observation",
        "_status": {"extension": [{**absent, "valueCode": "unknown"}]},
        "code": {"text": "x"},
    }
    assert errors(resource) == []


def test_required_choice_is_reported():
    resource = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/1"},
    }
    assert errors(resource) == [("required", "MedicationRequest.medication[x]")]


def test_only_one_choice_variant_is_allowed():
    resource = patient(deceasedBoolean=True, deceasedDateTime="2020-01-01")
    assert errors(resource) == [("structure", "Patient.deceasedDateTime")]


def test_different_choice_groups_may_both_be_present():
    assert errors(patient(deceasedBoolean=True, multipleBirthBoolean=False)) == []


# primitive values


@pytest.mark.parametrize("value", ["true", 1, None])
def test_boolean_must_be_a_json_boolean(value):
    assert errors(patient(active=value)) == [("structure", "Patient.active")]


@pytest.mark.parametrize("value", [True, "1", Decimal("1.0"), 1.0])
def test_integer_must_be_a_json_integer(value):
    assert errors(patient(multipleBirthInteger=value)) == [
        ("structure", "Patient.multipleBirthInteger")
    ]


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1])
def test_integer_must_fit_32_bits(value):
    assert errors(patient(multipleBirthInteger=value)) == [
        ("value", "Patient.multipleBirthInteger")
    ]


def test_positive_int_must_be_at_least_one():
    assert errors(patient(telecom=[{"value": "1", "rank": 0}])) == [
        ("value", "Patient.telecom[0].rank")
    ]


def test_unsigned_int_must_not_be_negative():
    resource = {"resourceType": "Bundle", "type": "searchset", "total": -1}
    assert errors(resource) == [("value", "Bundle.total")]


def test_integer_extremes_pass():
    resource = {"resourceType": "Bundle", "type": "searchset", "total": 2**31 - 1}
    assert errors(resource) == []
    assert errors(patient(multipleBirthInteger=-(2**31))) == []


@pytest.mark.parametrize("value", [3, Decimal("72.50"), Decimal("1E+3"), -0.5])
def test_decimal_accepts_json_numbers(value):
    assert errors(patient(extension=[{"url": "http://e.org/x", "valueDecimal": value}])) == []


@pytest.mark.parametrize("value", ["72.5", True])
def test_decimal_rejects_other_json_kinds(value):
    resource = patient(extension=[{"url": "http://e.org/x", "valueDecimal": value}])
    assert errors(resource) == [("structure", "Patient.extension[0].valueDecimal")]


@pytest.mark.parametrize("value", [12, True, {"family": "X"}])
def test_string_must_be_a_json_string(value):
    resource = patient(name=[{"family": value}])
    assert errors(resource) == [("structure", "Patient.name[0].family")]


@pytest.mark.parametrize("value", ["", "   ", "\n\t"])
def test_string_must_not_be_empty_or_whitespace(value):
    resource = patient(name=[{"family": value}])
    assert errors(resource) == [("value", "Patient.name[0].family")]


def test_string_may_contain_unicode_and_inner_whitespace():
    assert errors(patient(name=[{"family": "du\u00a0Marché  Ōta", "text": "a\nb"}])) == []


def test_string_longer_than_a_megabyte_is_rejected():
    resource = patient(name=[{"family": "x" * (1024 * 1024 + 1)}])
    assert errors(resource) == [("value", "Patient.name[0].family")]


@pytest.mark.parametrize("value", ["1974", "1974-12", "1974-12-25"])
def test_date_formats_pass(value):
    assert errors(patient(birthDate=value)) == []


@pytest.mark.parametrize("value", ["1974-13-01", "25/12/1974", "1974-12-25T10:00:00Z", "0000"])
def test_bad_date_is_rejected(value):
    assert errors(patient(birthDate=value)) == [("value", "Patient.birthDate")]


@pytest.mark.parametrize(
    "value", ["2020", "2020-02", "2020-02-03T10:00:00Z", "2020-02-03T10:00:00.5-05:00"]
)
def test_date_time_formats_pass(value):
    assert errors(patient(deceasedDateTime=value)) == []


@pytest.mark.parametrize(
    "value", ["2020-02-03T10:00:00", "2020-02-03T25:00:00Z", "2020-02-03 10:00"]
)
def test_bad_date_time_is_rejected(value):
    assert errors(patient(deceasedDateTime=value)) == [("value", "Patient.deceasedDateTime")]


def test_instant_needs_seconds_and_timezone():
    resource = patient(meta={"lastUpdated": "2020-02-03T10:00Z"})
    assert errors(resource) == [("value", "Patient.meta.lastUpdated")]


@pytest.mark.parametrize("value", ["male ", " male", "a  b"])
def test_code_must_not_have_surrounding_or_double_whitespace(value):
    resource = patient(communication=[{"language": {"coding": [{"code": value}]}}])
    assert errors(resource) == [("value", "Patient.communication[0].language.coding[0].code")]


def test_uri_must_not_contain_whitespace():
    resource = patient(identifier=[{"system": "http://exa mple.org"}])
    assert errors(resource) == [("value", "Patient.identifier[0].system")]


def test_base64_binary_is_checked():
    resource = {"resourceType": "Binary", "contentType": "text/plain", "data": "SGVsbG8=\nQUJD"}
    assert errors(resource) == []
    resource["data"] = "%%%2@()()"
    assert errors(resource) == [("value", "Binary.data")]


def test_base64_binary_does_not_backtrack_exponentially():
    data = "QUJD\n" * 5000 + "QUJ"
    resource = {"resourceType": "Binary", "contentType": "text/plain", "data": data}
    assert errors(resource) == [("value", "Binary.data")]


# resource ids


@pytest.mark.parametrize("value", ["bad_id", "a" * 65, "with space", ""])
def test_resource_id_must_match_the_id_pattern(value):
    assert errors(patient(id=value)) == [("value", "Patient.id")]


def test_resource_id_may_be_64_characters():
    assert errors(patient(id="A-z.9" + "x" * 59)) == []


def test_element_id_is_a_string():
    assert errors(patient(name=[{"id": "name_1 (official)", "family": "X"}])) == []


# narrative


def test_narrative_div_must_be_a_div():
    resource = patient(text={"status": "generated", "div": "<p>Peter</p>"})
    assert errors(resource) == [("value", "Patient.text.div")]


def test_narrative_div_must_not_contain_script():
    div = '<div xmlns="http://www.w3.org/1999/xhtml"><SCRIPT>alert(1)</SCRIPT></div>'
    resource = patient(text={"status": "generated", "div": div})
    assert errors(resource) == [("value", "Patient.text.div")]


def test_narrative_div_must_be_a_string():
    resource = patient(text={"status": "generated", "div": {"p": "x"}})
    assert errors(resource) == [("structure", "Patient.text.div")]


# primitive extensions


EXTENSION = {"url": "http://example.org/x", "valueString": "x"}


def test_primitive_extension_object_is_validated():
    resource = patient(birthDate="1974", _birthDate={"id": "b", "value": "1974"})
    assert errors(resource) == [("structure", "Patient.birthDate.value")]


def test_primitive_extension_must_be_an_object():
    resource = patient(birthDate="1974", _birthDate=[{"extension": [EXTENSION]}])
    assert errors(resource) == [("structure", "Patient.birthDate")]


def test_primitive_extension_without_value_is_allowed():
    assert errors(patient(_birthDate={"extension": [EXTENSION]})) == []


def test_primitive_extension_extensions_are_validated():
    resource = patient(_birthDate={"extension": [{"valueString": "x"}]})
    assert errors(resource) == [("required", "Patient.birthDate.extension[0].url")]


def test_aligned_primitive_extension_arrays_pass():
    name = {"given": ["Peter", None, "James"], "_given": [None, {"extension": [EXTENSION]}, None]}
    assert errors(patient(name=[name])) == []


def test_primitive_extension_array_without_values_passes():
    assert errors(patient(name=[{"_given": [{"extension": [EXTENSION]}]}])) == []


def test_primitive_extension_array_must_have_the_values_length():
    name = {"given": ["Peter", "James"], "_given": [{"extension": [EXTENSION]}]}
    assert errors(patient(name=[name])) == [("structure", "Patient.name[0].given")]


def test_primitive_extension_array_must_not_be_null_where_the_value_is():
    name = {"given": ["Peter", None], "_given": [{"extension": [EXTENSION]}, None]}
    assert errors(patient(name=[name])) == [
        ("structure", "Patient.name[0].given[1]"),
        ("structure", "Patient.name[0].given[1]"),
    ]


def test_primitive_extension_array_must_be_an_array():
    name = {"given": ["Peter"], "_given": {"extension": [EXTENSION]}}
    assert errors(patient(name=[name])) == [("structure", "Patient.name[0].given")]


def test_underscore_on_a_datatype_is_unknown():
    assert errors(patient(_name=[{"id": "x"}])) == [("structure", "Patient._name")]


def test_underscore_on_an_unknown_element_is_unknown():
    assert errors(patient(_nickname={"id": "x"})) == [("structure", "Patient._nickname")]


def test_element_id_and_extension_url_take_no_primitive_extension():
    resource = patient(name=[{"family": "X", "_id": {"id": "a"}}], extension=[
        {**EXTENSION, "_url": {"id": "b"}}
    ])
    assert errors(resource) == [
        ("structure", "Patient.name[0]._id"),
        ("structure", "Patient.extension[0]._url"),
    ]


# extensions


def test_extension_needs_a_url():
    assert errors(patient(extension=[{"valueString": "x"}])) == [
        ("required", "Patient.extension[0].url")
    ]


def test_extension_url_must_be_a_string():
    assert errors(patient(extension=[{"url": 5, "valueString": "x"}])) == [
        ("structure", "Patient.extension[0].url")
    ]


def test_extension_needs_a_value_or_nested_extensions():
    assert errors(patient(extension=[{"url": "http://example.org/x"}])) == [
        ("invalid", "Patient.extension[0]")
    ]


def test_extension_must_not_have_both_value_and_nested_extensions():
    extension = {**EXTENSION, "extension": [EXTENSION]}
    assert errors(patient(modifierExtension=[extension])) == [
        ("invalid", "Patient.modifierExtension[0]")
    ]


def test_extension_value_is_validated_as_its_type():
    extension = {"url": "http://example.org/x", "valueQuantity": {"value": "1"}}
    assert errors(patient(extension=[extension])) == [
        ("structure", "Patient.extension[0].valueQuantity.value")
    ]


def test_extension_takes_only_one_value():
    extension = {**EXTENSION, "valueBoolean": True}
    assert errors(patient(extension=[extension])) == [
        ("structure", "Patient.extension[0].valueBoolean")
    ]


def test_nested_extensions_are_validated():
    extension = {"url": "http://example.org/x", "extension": [{"url": "a", "valueCode": " "}]}
    assert errors(patient(extension=[extension])) == [
        ("value", "Patient.extension[0].extension[0].valueCode")
    ]


def test_extensions_inside_datatypes_are_validated():
    resource = patient(name=[{"family": "X", "extension": [{"url": "http://e.org/x"}]}])
    assert errors(resource) == [("invalid", "Patient.name[0].extension[0]")]


# nested resources


def test_contained_resources_are_validated():
    resource = patient(contained=[{"resourceType": "Organization", "id": "o"}, patient(gender="x")])
    assert errors(resource) == [("code-invalid", "Patient.contained[1].gender")]


def test_contained_resource_needs_a_resource_type():
    assert errors(patient(contained=[{"id": "o"}])) == [
        ("required", "Patient.contained[0].resourceType")
    ]


def test_contained_resource_must_not_contain_resources():
    inner = patient(id="p2", contained=[patient(id="p3")])
    assert errors(patient(contained=[inner])) == [("invalid", "Patient.contained[0].contained")]


def test_bundle_entry_resources_are_validated_with_the_walked_path():
    entries = [{"resource": patient()}, {"resource": patient()}, {"resource": patient(gender="x")}]
    resource = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    assert errors(resource) == [("code-invalid", "Bundle.entry[2].resource.gender")]


def test_bundle_entry_resource_must_be_a_resource():
    resource = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": "x"}]}
    assert errors(resource) == [("structure", "Bundle.entry[0].resource")]


def test_parameters_resources_and_parts_are_validated():
    part = {"name": "p", "resource": patient(active="yes")}
    resource = {"resourceType": "Parameters", "parameter": [{"name": "a", "part": [part]}]}
    assert errors(resource) == [("structure", "Parameters.parameter[0].part[0].resource.active")]


def test_content_reference_elements_are_validated_like_their_target():
    item = {"linkId": "1", "type": "group", "item": [{"type": "string", "text": "q"}]}
    resource = {"resourceType": "Questionnaire", "status": "draft", "item": [item]}
    assert errors(resource) == [("required", "Questionnaire.item[0].item[0].linkId")]


# required bindings


def test_code_must_be_in_its_required_value_set():
    assert errors(patient(gender="M")) == [("code-invalid", "Patient.gender")]


def test_codes_in_repeating_elements_are_checked():
    resource = {"resourceType": "CapabilityStatement", "format": ["json"], "kind": "instance"}
    resource.update(status="active", date="2024", fhirVersion="4.0.1", rest=[{"mode": "both"}])
    assert errors(resource) == [("code-invalid", "CapabilityStatement.rest[0].mode")]


def allergy(*codings: dict, **elements: object) -> dict:
    resource = {"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/1"}}
    return {**resource, "clinicalStatus": {"coding": list(codings)}, **elements}


def test_codeable_concept_with_an_allowed_code_passes():
    other = {"system": "http://snomed.info/sct", "code": "55561003"}
    assert errors(allergy(other, {"system": CLINICAL, "code": "active"})) == []


def test_codeable_concept_with_text_only_passes():
    resource = allergy()
    resource["clinicalStatus"] = {"text": "active"}
    assert errors(resource) == []


def test_codeable_concept_with_a_wrong_code_of_the_value_set_system_is_rejected():
    other = {"system": "http://snomed.info/sct", "code": "1"}
    resource = allergy(other, {"system": CLINICAL, "code": "on"})
    expected = ("code-invalid", "AllergyIntolerance.clinicalStatus.coding[1].code")
    assert errors(resource) == [expected]


def test_codeable_concept_without_a_coding_of_the_value_set_systems_is_rejected():
    resource = allergy({"system": "http://snomed.info/sct", "code": "55561003"}, {"code": "active"})
    assert errors(resource) == [("code-invalid", "AllergyIntolerance.clinicalStatus")]


@pytest.fixture
def meta_security_bound_to_gender(monkeypatch):
    """No Coding element of the core spec has an expandable required binding: make one."""
    tables = load_tables()
    tables["types"]["Meta"]["elements"]["Meta"]["security"][3] = GENDER_VS
    compiler = structure._Compiler(Definitions(tables))
    monkeypatch.setattr(structure, "_compiler", lambda: compiler)


def test_coding_must_have_an_allowed_code_for_its_system(meta_security_bound_to_gender):
    system = "http://hl7.org/fhir/administrative-gender"
    meta = {"security": [{"system": system, "code": "male"}, {"system": system, "code": "M"}]}
    assert errors(patient(meta=meta)) == [("code-invalid", "Patient.meta.security[1].code")]


def test_coding_of_another_system_is_not_checked(meta_security_bound_to_gender):
    meta = {"security": [{"system": "http://example.org/labels", "code": "M"}]}
    assert errors(patient(meta=meta)) == []


# the spec's own examples


def known_invalid_examples() -> dict[str, str]:
    return json.loads(KNOWN_INVALID.read_text())


def test_spec_examples_fail_exactly_as_listed():
    known = known_invalid_examples()
    failing: dict[str, list[str]] = {}
    paths = sorted(EXAMPLES.glob("*.json"))
    assert len(paths) == 714
    for path in paths:
        issues = validate_resource(fhirjson.decode(path.read_bytes()))
        if issues:
            failing[path.name] = [issue.expression or "" for issue in issues]
    assert sorted(failing) == sorted(known)
    for name, expressions in failing.items():
        assert any(expression in known[name] for expression in expressions), name
