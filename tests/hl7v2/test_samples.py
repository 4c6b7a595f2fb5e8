"""The 139 sample messages over a real MLLP socket: every one acknowledged, the supported ones
mapped to the resources they describe (read back through the FHIR API), the others stored."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import hl7
import pytest
from starlette.testclient import TestClient

from ficus import fhirjson
from ficus.hl7v2.message import message_digest

from .mllp_client import acknowledgement, send_all
from .support import RunningListener, Stack, sample, sample_names

SUPPORTED_EVENTS = {
    *(f"ADT^A{n:02d}" for n in (1, 2, 3, 4, 5, 8, 11, 13, 28, 31, 40)),
    "ORU^R01", "ORM^O01", "OML^O21", "VXU^V04",
    *(f"SIU^S{n}" for n in (12, 13, 14, 15, 16, 17, 26)),
}


def event_of(text: str) -> str:
    message_type = str(hl7.parse(text).segment("MSH")[9]).split("^")
    return f"{message_type[0]}^{message_type[1]}"


def read(client: TestClient, path: str, **params: str) -> dict:
    """A FHIR response body with decimals kept exact."""
    response = client.get(path, params=params)
    assert response.status_code == 200, (path, response.text[:500])
    return fhirjson.decode(response.content)


def one(client: TestClient, path: str, **params: str) -> dict:
    bundle = read(client, path, **params)
    assert bundle.get("total") == 1, (path, params, bundle.get("total"))
    return bundle["entry"][0]["resource"]


def search(client: TestClient, path: str, **params: str) -> list[dict]:
    bundle = read(client, path, **params, _count="200")
    return [entry["resource"] for entry in bundle.get("entry", [])]


def check_adt_a01(client: TestClient) -> None:
    patient = one(client, "Patient", identifier="urn:ficus:hl7v2:test1|PATID1234")
    assert patient["name"][0]["family"] == "EVERYMAN"
    assert patient["name"][0]["given"] == ["ADAM", "A"]
    assert patient["birthDate"] == "1988-08-18"
    assert patient["gender"] == "male"
    assert {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "123456789"}.items() <= patient["identifier"][2].items()
    assert patient["address"][0]["line"][0] == "1000 Hospital Lane"
    related = search(client, "RelatedPerson", patient=f"Patient/{patient['id']}")
    assert related and related[0]["name"][0]["family"] == "Evan"
    allergies = search(client, "AllergyIntolerance", patient=f"Patient/{patient['id']}")
    assert [a["code"]["coding"][0]["display"] for a in allergies] == ["PENICILLIN"]
    assert allergies[0]["category"] == ["environment"]
    conditions = search(client, "Condition", subject=f"Patient/{patient['id']}")
    assert any(c["code"]["coding"][0]["code"] == "422504002" for c in conditions)


def check_adt_legacy(client: TestClient) -> None:
    patient = one(client, "Patient", identifier="urn:ficus:hl7v2:1|10006579")
    assert patient["name"][0] == {"family": "DUCK", "given": ["DONALD", "D"]}
    assert patient["birthDate"] == "1924-10-10"
    encounter = one(client, "Encounter", identifier="urn:ficus:hl7v2:AccMgr|40007716")
    assert encounter["class"]["code"] == "IMP"
    assert encounter["status"] == "in-progress"
    assert encounter["period"] == {"start": "2005-01-10T04:55:02+07:00"}
    assert encounter["subject"]["reference"] == f"Patient/{patient['id']}"
    location = read(client, encounter["location"][0]["location"]["reference"])
    assert location["name"] == "1, 101, PREOP, S, 1"
    coverages = search(client, "Coverage", beneficiary=f"Patient/{patient['id']}")
    assert sorted((c["order"], c["payor"][0]["display"]) for c in coverages) == [
        (1, "MEDICARE"), (2, "MEDICAL MUTUAL CALIF."), (3, "SELF PAY")]
    assert next(c for c in coverages if c["order"] == 1)["subscriberId"] == "123121234A"


def check_adt_birth_time(client: TestClient) -> None:
    patient = one(client, "Patient", identifier="urn:ficus:hl7v2:NINTENDO|123456789")
    assert patient["birthDate"] == "1985-01-01"
    assert patient["_birthDate"]["extension"][0]["valueDateTime"] == "1985-01-01T00:00:00+07:00"
    assert patient["telecom"][0] == {"system": "phone", "value": "(555)555-0123", "use": "home"}
    encounter = one(client, "Encounter", patient=f"Patient/{patient['id']}")
    assert encounter["class"]["code"] == "AMB"
    assert encounter["period"]["start"] == "2001-01-01T00:00:00+07:00"


def check_merge(client: TestClient) -> None:
    survivor = one(client, "Patient", identifier="urn:ficus:hl7v2:BCBS|12345")
    merged = one(client, "Patient", identifier="urn:ficus:hl7v2:BCBS|56789")
    assert merged["active"] is False
    assert merged["link"] == [{"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}]
    assert survivor["link"] == [{"other": {"reference": f"Patient/{merged['id']}"}, "type": "replaces"}]


def check_lab_results(client: TestClient) -> None:
    """LAB-ORU-1 (preliminary) then LAB-ORU-2 (final) from the same sender: the final results
    update the same report and observations."""
    patient = one(client, "Patient", identifier="urn:ficus:hl7v2:1|10006579")
    reports = search(client, "DiagnosticReport", subject=f"Patient/{patient['id']}")
    assert sorted(r["code"]["coding"][0]["code"] for r in reports) == ["24317-0", "26464-8"]
    report = next(r for r in reports if r["code"]["coding"][0]["code"] == "24317-0")
    assert report["identifier"][1]["value"] == "82503246"
    assert report["status"] == "unknown"  # LAB-ORU-2 leaves OBR-25 empty
    assert len(report["result"]) == 5
    erythrocytes = one(client, "Observation", code="http://loinc.org|11273-0")
    assert erythrocytes["valueQuantity"] == {"value": Decimal("4.08"), "unit": "tera.l-1"}
    assert erythrocytes["status"] == "final"
    assert erythrocytes["effectiveDateTime"] == "2014-10-06T08:30:00+07:00"
    assert f"Observation/{erythrocytes['id']}" in [r["reference"] for r in report["result"]]
    neutrophils = one(client, "Observation", code="http://loinc.org|23761-0")
    assert neutrophils["valueQuantity"]["value"] == 72


def check_reference_ranges(client: TestClient) -> None:
    hemoglobin = one(client, "Observation", code="http://loinc.org|718-7")
    assert hemoglobin["valueQuantity"] == {
        "value": Decimal("12.5"), "unit": "grams per milliliter", "system": "http://unitsofmeasure.org", "code": "g/mL",
    }
    assert hemoglobin["referenceRange"][0]["low"]["value"] == 13
    assert hemoglobin["referenceRange"][0]["high"]["value"] == 18
    assert hemoglobin["referenceRange"][0]["text"] == "13 to 18"
    assert hemoglobin["interpretation"][0]["coding"][0]["code"] == "L"
    leukocytes = one(client, "Observation", code="http://loinc.org|26464-8", _count="1")
    assert leukocytes["interpretation"][0]["coding"][0]["code"] == "HH"


def check_structured_numeric(client: TestClient) -> None:
    glucose = one(client, "Observation", code="1554-5")
    assert glucose["valueQuantity"] == {"value": 182, "unit": "mg/dl"}
    assert glucose["referenceRange"] == [{"text": "70_105"}]
    assert glucose["interpretation"][0]["coding"][0]["code"] == "H"


def check_immunization(client: TestClient) -> None:
    immunization = one(client, "Immunization", identifier="urn:ficus:hl7v2:NDA|IZ-783274")
    assert immunization["vaccineCode"]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/cvx", "code": "140", "display": "Influenza, seasonal, injectable, preservative free",
    }
    assert immunization["occurrenceDateTime"] == "2012-08-14"
    assert immunization["status"] == "completed"
    assert immunization["primarySource"] is True
    assert immunization["lotNumber"] == "Z0860BB"
    assert immunization["doseQuantity"] == {"value": Decimal("0.5"), "unit": "MilliLiter [SI Volume Units]",
                                            "system": "http://unitsofmeasure.org", "code": "mL"}
    assert immunization["manufacturer"]["display"] == "CSL Behring"


def check_historical_immunizations(client: TestClient) -> None:
    patient = one(client, "Patient", identifier="urn:ficus:hl7v2:NIST-MPI-1|90012")
    given = search(client, "Immunization", patient=f"Patient/{patient['id']}")
    assert sorted(i["occurrenceDateTime"] for i in given) == ["2013-11-12", "2014-10-12", "2015-06-24"]
    assert sum(i["primarySource"] is False for i in given) == 2
    funding = one(client, "Observation", code="http://loinc.org|30963-3", subject=f"Patient/{patient['id']}")
    assert funding["partOf"][0]["reference"].startswith("Immunization/")


def check_order(client: TestClient) -> None:
    order = one(client, "ServiceRequest", identifier="urn:ficus:hl7v2:GHHPlacer|1101")
    assert order["code"]["coding"][0]["code"] == "24725-4"
    assert order["intent"] == "order"
    assert order["status"] == "active"
    assert order["authoredOn"] == "2021-10-20T11:26:00+02:15"
    assert order["requester"]["display"] == "JONES A ORDPROVIDER"


CHECKS: dict[str, Callable[[TestClient], None]] = {
    "ADT-A01-01.hl7": check_adt_a01,
    "ADT01-23.hl7": check_adt_legacy,
    "ADT04-23.hl7": check_adt_birth_time,
    "ADT-A40-01.hl7": check_merge,
    "LAB-ORU-2.hl7": check_lab_results,
    "LRI_2.0-NG_CBC_Typ_Message.hl7": check_reference_ranges,
    "ORU-R01-RMGEAD.hl7": check_structured_numeric,
    "IZ_1_1.1_Admin_Child_Max_Message.hl7": check_immunization,
    "VXU.hl7": check_historical_immunizations,
    "ORM-O01-01.hl7": check_order,
}
# On PostgreSQL a representative subset keeps the run short: every checked sample, every
# unsupported kind once, and each sample file whose name ends in 02.
POSTGRES_EXTRA = ("LAB-ORU-1.hl7", "SIU-S12-01.hl7", "ADT-A09-01.hl7", "MDM-T02-01.hl7", "BAR-P01-01.hl7", "ORU-R01-01.hl7", "OML-O21-03.hl7",
                  "ADT-A08-02.hl7", "SIU-S15-02.hl7", "VXU-V04-01.hl7")


def test_every_sample_is_acknowledged_and_mapped(database_url: str, stack: Stack, listener: RunningListener,
                                                  client: TestClient) -> None:
    names = sample_names()
    assert len(names) == 139
    if database_url.startswith("postgresql"):
        names = sorted(set(CHECKS) | set(POSTGRES_EXTRA))
    messages = [sample(name) for name in names]
    acks = send_all(listener.port, messages, connections=4)
    listener.settle()
    stored = {m.digest: m for m in stack.store.messages(limit=200)}
    supported = 0
    for name, text, ack in zip(names, messages, acks):
        code, control_id, errors = acknowledgement(ack)
        assert control_id == str(hl7.parse(text).segment("MSH")[10]), name
        assert code == "AA", (name, errors)
        message = stored[message_digest(text)]
        if event_of(text) in SUPPORTED_EVENTS:
            supported += 1
            assert message.status == "mapped", (name, message.error)
        else:
            assert message.status == "unsupported" and "stored but not mapped" in (message.error or ""), name
    counts = stack.store.counts()
    assert counts == {"mapped": supported, "unsupported": len(names) - supported}
    if len(names) == 139:
        assert supported == 64
    for name in names:
        if name in CHECKS:
            CHECKS[name](client)


@pytest.mark.parametrize("name", ["ADT-A01-01.hl7", "LRI_2.0-NG_CBC_Typ_Message.hl7", "VXU-V04-02.hl7", "SIU-S12_1.hl7"])
def test_every_resource_a_message_produced_is_stored(stack: Stack, listener: RunningListener, client: TestClient,
                                                      name: str) -> None:
    send_all(listener.port, [sample(name)], connections=1)
    listener.settle()
    stored = stack.store.messages()[0]
    assert stored.status == "mapped" and stored.resources
    for location in stored.resources:
        assert client.get(location).status_code == 200, location
    assert any(location.startswith("Provenance/") for location in stored.resources)


def test_an_appointment_is_booked_then_cancelled(stack: Stack, listener: RunningListener, client: TestClient) -> None:
    acks = send_all(listener.port, [sample("SIU-S12-01.hl7")], connections=1)
    listener.settle()
    assert acknowledgement(acks[0])[0] == "AA"
    booked = one(client, "Appointment", identifier="urn:ficus:hl7v2:GHHSFacility|36996")
    assert booked["status"] == "booked"
    assert booked["start"] == "2021-09-24T09:30:00+02:15"
    assert booked["end"] == "2021-09-24T10:20:00+02:15"
    assert booked["serviceType"][0]["coding"][0]["code"] == "76164006"
    assert booked["comment"] == "Appointment booked for emergency procedure"
    participants = {p["actor"].get("display"): p for p in booked["participant"]}
    assert participants["Robert C GE"]["type"][0]["coding"][0]["code"] == "010"
    assert participants["Robert C GE"]["period"] == {"start": "2021-09-24T09:30:00+02:15", "end": "2021-09-24T10:20:00+02:15"}
    assert participants["Room01, 055, GH Clinic"]["actor"]["reference"].startswith("Location/")
    patient = read(client, booked["participant"][0]["actor"]["reference"])
    assert patient["name"][0]["family"] == "EVERYMAN"

    send_all(listener.port, [sample("SIU-S15-01.hl7")], connections=1)
    listener.settle()
    cancelled = one(client, "Appointment", identifier="urn:ficus:hl7v2:GHHSFacility|36996")
    assert cancelled["id"] == booked["id"]
    assert cancelled["status"] == "cancelled"
    assert cancelled["meta"]["versionId"] == "2"
