"""What the outbound messages say: ADT from Patient and Encounter changes, ORU from results,
each parsed with python-hl7 and checked field by field against the FHIR resources written."""

from __future__ import annotations

from decimal import Decimal

import hl7
import pytest
from starlette.testclient import TestClient

from ficus.hl7v2.outbound.encoding import ReverseVocabulary, dtm, escape
from ficus.hl7v2.outbound.oru import observation_value

from .consumer import Consumer
from .support import create, field, segments, settle, update

LOINC, SNOMED, UCUM = "http://loinc.org", "http://snomed.info/sct", "http://unitsofmeasure.org"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"

PATIENT = {
    "resourceType": "Patient",
    "identifier": [
        {"system": "urn:ficus:hl7v2:HOSP", "value": "1001", "type": {"coding": [{"system": V2_0203, "code": "MR"}]}},
        {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "123-45-6789", "type": {"coding": [{"system": V2_0203, "code": "SS"}]}},
        {"system": "urn:oid:2.16.840.1.113883.19.5", "value": "A|7"},
    ],
    "name": [{"use": "official", "family": "Smith", "given": ["Ann", "Beth", "Cara"], "prefix": ["Dr"]},
             {"use": "nickname", "given": ["Annie"]}],
    "birthDate": "1980-01-02",
    "gender": "female",
    "address": [{"use": "home", "line": ["1 Main St", "Flat 2"], "city": "Springfield", "state": "IL",
                 "postalCode": "62701", "country": "USA"}],
    "telecom": [{"system": "phone", "value": "555-0100", "use": "home"},
                {"system": "email", "value": "ann@example.org"},
                {"system": "phone", "value": "555-0199", "use": "work"}],
    "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]},
}


def test_a_new_patient_is_an_a04_and_a_change_an_a08_carrying_pid(fhir: TestClient, consumer: Consumer) -> None:
    created = create(fhir, PATIENT)
    update(fhir, {**created, "name": [{"use": "official", "family": "Jones", "given": ["Ann"]}], "deceasedDateTime": "2024-03-04T05:06:07Z"})
    a04, a08 = consumer.wait_for(2)
    assert hl7.parse(a04) and hl7.parse(a08)
    assert field(a04, "MSH", 9) == "ADT^A04^ADT_A01" and field(a08, "MSH", 9) == "ADT^A08^ADT_A01"
    assert [field(a04, "MSH", n) for n in (3, 4, 5, 6, 11, 12)] == ["FICUS", "HOSP", "LIS", "LAB", "P", "2.5.1"]
    assert field(a04, "MSH", 10) != field(a08, "MSH", 10)
    assert field(a04, "EVN", 1) == "A04"
    identifiers = field(a04, "PID", 3).split("~")
    assert identifiers[:3] == ["1001^^^HOSP^MR", "123-45-6789^^^USSSA^SS", "A\\F\\7^^^&2.16.840.1.113883.19.5&ISO"]
    assert identifiers[3] == f"{created['id']}^^^&http://testserver/fhir/Patient&URI^RI"
    assert hl7.parse(a04).unescape(identifiers[2].split("^")[0]) == "A|7"
    assert field(a04, "PID", 5) == "Smith^Ann^Beth Cara^^Dr^^L~^Annie^^^^^N"
    assert field(a04, "PID", 7) == "19800102"
    assert field(a04, "PID", 8) == "F"
    assert field(a04, "PID", 11) == "1 Main St^Flat 2^Springfield^IL^62701^USA^H"
    assert field(a04, "PID", 13) == "555-0100^PRN^PH~^NET^Internet^ann@example.org"
    assert field(a04, "PID", 14) == "555-0199^WPN^PH"
    assert field(a04, "PID", 16) == "M"
    assert field(a04, "PV1", 2) == "N"
    assert field(a08, "PID", 5) == "Jones^Ann^^^^^L"
    assert (field(a08, "PID", 29), field(a08, "PID", 30)) == ("20240304050607+0000", "Y")


def test_an_encounter_admits_with_a01_and_discharges_with_a03(fhir: TestClient, consumer: Consumer) -> None:
    patient = create(fhir, PATIENT)
    encounter = create(fhir, {
        "resourceType": "Encounter", "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "identifier": [{"system": "urn:ficus:hl7v2:HOSP", "value": "V100",
                        "type": {"coding": [{"system": V2_0203, "code": "VN"}]}}],
        "subject": {"reference": f"Patient/{patient['id']}"},
        "period": {"start": "2024-01-05T08:30:00+01:00"},
        "location": [{"location": {"display": "Ward 7"}}],
    })
    update(fhir, {**encounter, "status": "finished", "period": {"start": "2024-01-05T08:30:00+01:00", "end": "2024-01-09T12:00:00+01:00"}})
    _, a01, a03 = consumer.wait_for(3)
    assert field(a01, "MSH", 9) == "ADT^A01^ADT_A01" and field(a03, "MSH", 9) == "ADT^A03^ADT_A03"
    assert field(a01, "PID", 3).startswith("1001^^^HOSP^MR")
    assert field(a01, "PV1", 2) == "I"
    assert field(a01, "PV1", 3) == "Ward 7"
    assert field(a01, "PV1", 19) == "V100^^^HOSP^VN"
    assert field(a01, "PV1", 44) == "20240105083000+0100"
    assert field(a01, "EVN", 6) == "20240105083000+0100"
    assert field(a03, "PV1", 45) == "20240109120000+0100"
    assert field(a03, "EVN", 6) == "20240109120000+0100"


def test_an_outpatient_visit_registers_with_a04(fhir: TestClient, consumer: Consumer) -> None:
    patient = create(fhir, PATIENT)
    create(fhir, {"resourceType": "Encounter", "status": "arrived",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": {"reference": f"Patient/{patient['id']}"}})
    visit = consumer.wait_for(2)[1]
    assert field(visit, "MSH", 9) == "ADT^A04^ADT_A01"
    assert field(visit, "PV1", 2) == "O"


def test_a_report_and_its_results_are_one_oru(fhir: TestClient, consumer: Consumer) -> None:
    patient = create(fhir, PATIENT)
    subject = {"reference": f"Patient/{patient['id']}"}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [  # the report before its results
        {"fullUrl": "urn:uuid:6b0fd1a2-0000-4000-8000-000000000003", "request": {"method": "POST", "url": "DiagnosticReport"},
         "resource": {"resourceType": "DiagnosticReport", "status": "final", "subject": subject,
                      "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "HM"}]}],
                      "code": {"coding": [{"system": LOINC, "code": "58410-2", "display": "CBC panel"}]},
                      "effectiveDateTime": "2024-02-01T07:00:00Z", "issued": "2024-02-01T09:15:00Z",
                      "result": [{"reference": "urn:uuid:6b0fd1a2-0000-4000-8000-000000000001"},
                                 {"reference": "urn:uuid:6b0fd1a2-0000-4000-8000-000000000002"}]}},
        {"fullUrl": "urn:uuid:6b0fd1a2-0000-4000-8000-000000000001", "request": {"method": "POST", "url": "Observation"},
         "resource": {"resourceType": "Observation", "status": "final", "subject": subject,
                      "code": {"coding": [{"system": LOINC, "code": "718-7", "display": "Hemoglobin"}]},
                      "effectiveDateTime": "2024-02-01T07:00:00Z",
                      "valueQuantity": {"value": 13.5, "unit": "g/dL", "system": UCUM, "code": "g/dL"},
                      "referenceRange": [{"low": {"value": 12}, "high": {"value": 16}}],
                      "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "N"}]}]}},
        {"fullUrl": "urn:uuid:6b0fd1a2-0000-4000-8000-000000000002", "request": {"method": "POST", "url": "Observation"},
         "resource": {"resourceType": "Observation", "status": "preliminary", "subject": subject,
                      "code": {"coding": [{"system": LOINC, "code": "600-7", "display": "Blood culture"}]},
                      "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "264868006", "display": "No growth"}]}}},
    ]}
    response = fhir.post("", json=bundle)
    assert response.status_code == 200, response.text
    consumer.wait_for(2)
    received = settle(consumer)
    assert len(received) == 2  # the Observations travel in the report's ORU only
    oru = received[1]
    assert field(oru, "MSH", 9) == "ORU^R01^ORU_R01"
    assert field(oru, "PID", 3).startswith("1001^^^HOSP^MR")
    assert field(oru, "OBR", 4) == "58410-2^CBC panel^LN"
    assert field(oru, "OBR", 7) == "20240201070000+0000"
    assert field(oru, "OBR", 22) == "20240201091500+0000"
    assert field(oru, "OBR", 24) == "HM"
    assert field(oru, "OBR", 25) == "F"
    assert len(segments(oru, "OBX")) == 2
    assert [field(oru, "OBX", n, 0) for n in (1, 2, 3, 5, 6, 7, 8, 11, 14)] == [
        "1", "NM", "718-7^Hemoglobin^LN", "13.5", "g/dL^g/dL^UCUM", "12-16", "N", "F", "20240201070000+0000"]
    assert [field(oru, "OBX", n, 1) for n in (1, 2, 3, 5, 11)] == [
        "2", "CWE", "600-7^Blood culture^LN", "264868006^No growth^SCT", "P"]


def test_a_lone_observation_with_components_is_an_oru_with_an_obx_per_component(fhir: TestClient, consumer: Consumer) -> None:
    patient = create(fhir, PATIENT)
    create(fhir, {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{patient['id']}"},
                "code": {"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}]},
                "effectiveDateTime": "2024-02-02T10:00:00+01:00",
                "component": [
                    {"code": {"coding": [{"system": LOINC, "code": "8480-6", "display": "Systolic"}]},
                     "valueQuantity": {"value": 120, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}},
                    {"code": {"coding": [{"system": LOINC, "code": "8462-4", "display": "Diastolic"}]},
                     "valueQuantity": {"value": 80, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}}]})
    oru = consumer.wait_for(2)[1]
    assert field(oru, "OBR", 4) == "85354-9^Blood pressure panel^LN"
    assert [field(oru, "OBX", 3, i) for i in (0, 1)] == ["8480-6^Systolic^LN", "8462-4^Diastolic^LN"]
    assert [field(oru, "OBX", 5, i) for i in (0, 1)] == ["120", "80"]
    assert [field(oru, "OBX", 4, i) for i in (0, 1)] == ["1", "1"]
    assert field(oru, "OBX", 6, 0) == "mm[Hg]^mmHg^UCUM"


@pytest.mark.parametrize(("value", "expected"), [
    ({"valueQuantity": {"value": Decimal("7.20"), "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}}, ("NM", "7.20", "mmol/L^mmol/L^UCUM")),
    ({"valueQuantity": {"value": Decimal(5), "comparator": "<", "unit": "U/L"}}, ("SN", "<^5", "U/L")),
    ({"valueInteger": 3}, ("NM", "3", "")),
    ({"valueString": "a^b|c"}, ("ST", "a\\S\\b\\F\\c", "")),
    ({"valueString": "line one\nline two"}, ("TX", "line one\\.br\\line two", "")),
    ({"valueBoolean": True}, ("CWE", "Y^Yes^HL70136", "")),
    ({"valueRange": {"low": {"value": 1, "unit": "mg"}, "high": {"value": 3, "unit": "mg"}}}, ("SN", "^1^-^3", "mg")),
    ({"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 128}}}, ("SN", "^1^:^128", "")),
    ({"valueDateTime": "2024-05-06T07:08:09.12345+02:00"}, ("DTM", "20240506070809.1234+0200", "")),
    ({"valueTime": "07:08:09"}, ("TM", "070809", "")),
    ({"valuePeriod": {"start": "2024-01-01", "end": "2024-01-31"}}, ("DR", "20240101^20240131", "")),
    ({"valueCodeableConcept": {"text": "slightly cloudy"}}, ("CWE", "^slightly cloudy", "")),
])
def test_obx_value_types_follow_value_x(value: dict, expected: tuple[str, str, str]) -> None:
    assert observation_value(ReverseVocabulary(), value) == expected


def test_dates_keep_their_precision() -> None:
    assert [dtm(v) for v in ("2024", "2024-03", "2024-03-04", "2024-03-04T05:06Z")] == ["2024", "202403", "20240304", "202403040506+0000"]
    assert escape("a\\b&c~d") == "a\\E\\b\\T\\c\\R\\d"


def test_deleting_a_patient_sends_a29_and_cancelling_a_visit_a11(fhir: TestClient, consumer: Consumer) -> None:
    patient = create(fhir, PATIENT)
    encounter = create(fhir, {"resourceType": "Encounter", "status": "in-progress",
                            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
                            "subject": {"reference": f"Patient/{patient['id']}"}})
    update(fhir, {**encounter, "status": "cancelled"})
    assert fhir.delete(f"Encounter/{encounter['id']}").status_code in (200, 204)
    assert fhir.delete(f"Patient/{patient['id']}").status_code in (200, 204)
    received = consumer.wait_for(5)
    assert [field(m, "MSH", 9) for m in received] == [
        "ADT^A04^ADT_A01", "ADT^A04^ADT_A01", "ADT^A11^ADT_A09", "ADT^A11^ADT_A09", "ADT^A29^ADT_A21"]
    assert field(received[1], "PV1", 2) == "E"
    assert field(received[4], "PID", 3).startswith("1001^^^HOSP^MR")  # the last version before the deletion
