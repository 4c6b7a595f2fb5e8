"""v2 to FHIR without a database: data types, segment maps, message maps, identities."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ficus.hl7v2.errors import V2Error
from ficus.hl7v2.mapping import MappingOptions, UnsupportedMessage, convert
from ficus.hl7v2.mapping.context import MappingContext
from ficus.hl7v2.mapping.datatypes import DataTypeError, date_time
from ficus.hl7v2.mapping.vocabulary import Vocabulary
from ficus.hl7v2.message import V2Message
from ficus.validation.structure import validate_resource

from .support import sample, sample_names

MSH = "MSH|^~\\&|LAB|HOSP|FICUS|FICUS|20240101120000+0100||{event}|C1|P|2.5.1"
PID = "PID|1||123^^^HOSP^MR||Doe^Jane||19800101|F"


def segment(name: str, fields: dict[int, str]) -> str:
    """A segment from {field number: value}, the fields in between empty."""
    return "|".join([name, *(fields.get(n, "") for n in range(1, max(fields) + 1))])


def message(event: str, *segments: str) -> V2Message:
    return V2Message("\r".join([MSH.format(event=event), *segments]))


def resources(bundle: dict, res_type: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == res_type]


def observation(obx: str, **options: str) -> dict:
    bundle = convert(message("ORU^R01", PID, "OBR|1||F1^LAB|24317-0^CBC^LN|||20240101100000+0100||||||||||||||||||F", obx),
                     MappingOptions(**options)).bundle
    return resources(bundle, "Observation")[0]


@pytest.mark.parametrize(
    ("v2", "fhir"),
    [
        ("2024", "2024"), ("202402", "2024-02"), ("20240229", "2024-02-29"),
        ("202402291530", "2024-02-29T15:30:00+00:00"), ("20240229153012.25-0500", "2024-02-29T15:30:12.25-05:00"),
        ("2024022915+0215", "2024-02-29T15:00:00+02:15"),
    ],
)
def test_v2_times_become_fhir_date_times_at_their_precision(v2: str, fhir: str) -> None:
    ctx = MappingContext(message("ADT^A01", PID), Vocabulary(), MappingOptions())
    assert date_time(ctx, v2) == fhir


def test_times_without_offset_take_the_site_time_zone_with_daylight_saving() -> None:
    ctx = MappingContext(message("ADT^A01", PID), Vocabulary(), MappingOptions(timezone="America/New_York"))
    assert date_time(ctx, "202401151200") == "2024-01-15T12:00:00-05:00"
    assert date_time(ctx, "202407151200") == "2024-07-15T12:00:00-04:00"


@pytest.mark.parametrize("bad", ["2024-01-01", "20241301", "20240230", "2024010112+2500", "yesterday"])
def test_malformed_times_are_data_type_errors(bad: str) -> None:
    ctx = MappingContext(message("ADT^A01", PID), Vocabulary(), MappingOptions())
    with pytest.raises(DataTypeError):
        date_time(ctx, bad)


def test_patient_identifiers_names_telecom_and_gender() -> None:
    pid = segment("PID", {
        1: "1", 2: "77^^^&2.16.840.1.113883.19.5&ISO^PI", 3: "123^^^HOSP^MR~999-88-7777^^^USSSA^SS",
        5: "Doe&van^Jane^Q^Jr^Dr^^L", 7: "19800101", 8: "F", 11: "12 Elm St^Apt 4^Springfield^IL^62701^USA^H",
        13: "^PRN^PH^^1^217^5551234^9~^NET^Internet^jane@example.org", 14: "^WPN^CP^^^217^5550000", 16: "M",
        24: "Y", 25: "2",
    })
    patient = resources(convert(message("ADT^A08", pid)).bundle, "Patient")[0]
    assert patient["identifier"][0]["system"] == "urn:oid:2.16.840.1.113883.19.5"
    assert patient["identifier"][1]["system"] == "urn:ficus:hl7v2:HOSP"
    assert patient["identifier"][2]["system"] == "http://hl7.org/fhir/sid/us-ssn"
    assert patient["name"] == [{"use": "official", "family": "Doe", "given": ["Jane", "Q"], "prefix": ["Dr"], "suffix": ["Jr"]}]
    assert patient["gender"] == "female"
    assert patient["maritalStatus"]["coding"][0]["code"] == "M"
    assert patient["address"] == [{"use": "home", "line": ["12 Elm St", "Apt 4"], "city": "Springfield", "state": "IL",
                                   "postalCode": "62701", "country": "USA"}]
    assert patient["telecom"] == [
        {"system": "phone", "value": "+1 (217) 5551234 ext. 9", "use": "home"},
        {"system": "email", "value": "jane@example.org", "use": "home"},
        {"system": "phone", "value": "(217) 5550000", "use": "work"},
    ]
    assert patient["multipleBirthInteger"] == 2 and "multipleBirthBoolean" not in patient
    assert validate_resource(patient) == []


def test_a_mobile_phone_is_a_phone_used_as_mobile() -> None:
    pid = segment("PID", {1: "1", 3: "123^^^HOSP^MR", 5: "Doe^Jane", 13: "^ORN^CP^^^217^5551111"})
    patient = resources(convert(message("ADT^A08", pid)).bundle, "Patient")[0]
    assert patient["telecom"] == [{"system": "phone", "value": "(217) 5551111", "use": "mobile"}]


def test_encounter_class_status_period_and_locations() -> None:
    pv1 = segment("PV1", {1: "1", 2: "E", 3: "ER^2^B^MAIN", 7: "0101^Welby^Marcus^^^Dr", 19: "V77^^^HOSP^VN",
                          44: "20240101080000", 45: "20240101140000"})
    bundle = convert(message("ADT^A03", PID, pv1)).bundle
    encounter = resources(bundle, "Encounter")[0]
    assert encounter["class"] == {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER",
                                  "display": "emergency"}
    assert encounter["status"] == "finished"
    assert encounter["period"] == {"start": "2024-01-01T08:00:00+00:00", "end": "2024-01-01T14:00:00+00:00"}
    assert encounter["identifier"][0]["value"] == "V77"
    assert encounter["participant"][0]["individual"]["display"] == "Dr Marcus Welby"
    location = resources(bundle, "Location")[0]
    assert location["name"] == "B, 2, ER, MAIN"
    put = next(e for e in bundle["entry"] if e["resource"] is encounter)["request"]
    assert put == {"method": "PUT", "url": "Encounter?identifier=urn%3Aficus%3Ahl7v2%3AHOSP%7CV77"}


def test_admit_messages_are_authoritative_for_the_patient_and_results_only_refer_to_it() -> None:
    admit = convert(message("ADT^A01", PID)).bundle["entry"][0]["request"]
    result = convert(message("ORU^R01", PID)).bundle["entry"][0]["request"]
    assert admit == {"method": "PUT", "url": "Patient?identifier=urn%3Aficus%3Ahl7v2%3AHOSP%7C123"}
    assert result == {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn%3Aficus%3Ahl7v2%3AHOSP%7C123"}


@pytest.mark.parametrize(
    ("obx", "expected"),
    [
        ("OBX|1|NM|2345-7^Glucose^LN||105|mg/dL^^UCUM|70-99|H|||F",
         {"valueQuantity": {"value": Decimal(105), "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}}),
        ("OBX|1|SN|5|x||<^0.5|ng/mL^^UCUM|||||F",
         {"valueQuantity": {"value": Decimal("0.5"), "unit": "ng/mL", "system": "http://unitsofmeasure.org", "code": "ng/mL",
                            "comparator": "<"}}),
        ("OBX|1|SN|5|x||^1^:^128||||||F", {"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 128}}}),
        ("OBX|1|SN|5|x||^2^-^4|%||||||F", {"valueRange": {"low": {"value": 2, "unit": "%"}, "high": {"value": 4, "unit": "%"}}}),
        ("OBX|1|CWE|5|x||260373001^Detected^SCT||||||F",
         {"valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "260373001", "display": "Detected"}]}}),
        ("OBX|1|DT|5|x||20231224||||||F", {"valueDateTime": "2023-12-24"}),
        ("OBX|1|TM|5|x||0930||||||F", {"valueTime": "09:30:00"}),
        ("OBX|1|TX|5|x||First line~Second line||||||F", {"valueString": "First line\nSecond line"}),
        ("OBX|1|NR|5|x||3^7|mmol/L||||||F", {"valueRange": {"low": {"value": 3, "unit": "mmol/L"}, "high": {"value": 7, "unit": "mmol/L"}}}),
    ],
)
def test_every_value_type_maps_to_its_value(obx: str, expected: dict) -> None:
    found = observation(obx.replace("|5|x|", "|5^Test^L|"))
    value = {k: v for k, v in found.items() if k.startswith("value")}
    assert value == expected
    assert validate_resource(found) == []


def test_units_reference_ranges_interpretation_and_status() -> None:
    found = observation("OBX|1|NM|2345-7^Glucose^LN||105|mg/dL^^UCUM|70-99|H^High^HL70078|||C|||20240101093000+0100")
    assert found["referenceRange"] == [{"low": {"value": 70, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
                                        "high": {"value": 99, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
                                        "text": "70-99"}]
    assert found["interpretation"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H", "display": "High"}
    assert found["status"] == "corrected"
    assert found["effectiveDateTime"] == "2024-01-01T09:30:00+01:00"
    assert observation("OBX|1|NM|1^A^L||1||<5||||I")["referenceRange"][0]["high"]["value"] == 5
    assert observation("OBX|1|NM|1^A^L||1||>60||||I")["status"] == "registered"


def test_an_unreadable_value_names_its_field() -> None:
    with pytest.raises(V2Error) as raised:
        observation("OBX|1|NM|2345-7^Glucose^LN||one hundred|mg/dL|||||F")
    assert raised.value.problem.location is not None and str(raised.value.problem.location) == "OBX-5"


def test_an_unknown_value_type_is_kept_as_text_with_a_warning() -> None:
    conversion = convert(message("ORU^R01", PID, "OBR|1||F1|X^Y^L", "OBX|1|ZZ|1^A^L||odd^value||||||F"))
    assert resources(conversion.bundle, "Observation")[0]["valueString"] == "odd^value"
    assert conversion.problems[0].severity == "W" and "'ZZ' is not mapped" in conversion.problems[0].text


def test_immunization_status_from_completion_and_action_codes() -> None:
    def status(completion: str, action: str) -> str:
        rxa = segment("RXA", {1: "0", 2: "1", 3: "20240101", 5: "08^HepB^CVX", 6: "999", 9: "00^New^NIP001",
                              20: completion, 21: action})
        return resources(convert(message("VXU^V04", PID, "ORC|RE||F9^EHR", rxa)).bundle, "Immunization")[0]["status"]

    assert status("CP", "A") == "completed"
    assert status("RE", "A") == "not-done"
    assert status("CP", "D") == "entered-in-error"


def test_converting_twice_gives_the_same_bundle() -> None:
    first = convert(V2Message(sample("ADT-A01-01.hl7")), recorded=1_700_000_000_000_000).bundle
    second = convert(V2Message(sample("ADT-A01-01.hl7")), recorded=1_700_000_000_000_000).bundle
    assert first == second


def test_every_sample_converts_to_valid_resources() -> None:
    mapped = 0
    for name in sample_names():
        try:
            bundle = convert(V2Message(sample(name))).bundle
        except UnsupportedMessage:
            continue
        mapped += 1
        for entry in bundle["entry"]:
            assert validate_resource(entry["resource"]) == [], (name, entry["resource"]["resourceType"])
    assert mapped == 64


def test_an_unsupported_message_is_named_with_the_right_code() -> None:
    with pytest.raises(UnsupportedMessage) as event:
        convert(message("ADT^A09", PID))
    with pytest.raises(UnsupportedMessage) as kind:
        convert(message("MDM^T02", PID))
    assert (event.value.problem.code, kind.value.problem.code) == ("201", "200")
    assert event.value.ack_code == "AA"


def test_local_tables_translate_a_facility_s_own_codes(tmp_path: Path) -> None:
    (tmp_path / "HOSP").mkdir()
    (tmp_path / "HOSP" / "AdministrativeSex.csv").write_text(
        "HL7 v2,,,,,,HL7 FHIR,,,\nCode,Text,Code System,,,,Code,,Display,Code System\n"
        "W,Woman,local,,,,female,,Female,http://hl7.org/fhir/administrative-gender\n"
    )
    pid = PID.replace("|F", "|W")
    plain = resources(convert(message("ADT^A08", pid)).bundle, "Patient")[0]
    local = resources(convert(message("ADT^A08", pid), MappingOptions(local_tables=tmp_path)).bundle, "Patient")[0]
    assert "gender" not in plain and local["gender"] == "female"
