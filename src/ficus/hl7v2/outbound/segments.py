"""The segments ADT and ORU messages share: MSH, EVN, PID (from a Patient) and PV1 (from an
Encounter), per the v2-to-FHIR IG's segment maps read in reverse."""

from __future__ import annotations

from dataclasses import dataclass

from ficus.hl7v2.outbound.encoding import (
    ENCODING_CHARACTERS,
    FIELD,
    ReverseVocabulary,
    code_of,
    components,
    cx,
    dtm,
    escape,
    repetitions,
    subcomponents,
    xad,
    xpn,
    xtn,
)

VERSION = "2.5.1"
CHARACTER_SET = "UNICODE UTF-8"


def segment(name: str, *fields: str | None) -> str:
    """A segment from already escaped fields (field 1 first), without trailing empty fields."""
    return FIELD.join([name, *(field or "" for field in fields)]).rstrip(FIELD)


@dataclass(frozen=True)
class Header:
    """What MSH says about the sender and the receiver of one message."""

    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str


def msh(header: Header, message_type: str, control_id: str, when: str) -> str:
    """MSH: `message_type` is `ADT^A08^ADT_A01` (already in components); `when` a v2 DTM.
    The separator after `MSH` is MSH-1 itself, so the encoding characters are MSH-2."""
    return segment(
        "MSH", ENCODING_CHARACTERS, escape(header.sending_application), escape(header.sending_facility),
        escape(header.receiving_application), escape(header.receiving_facility), when, "", message_type,
        escape(control_id), "P", VERSION, "", "", "", "", "", CHARACTER_SET,
    )


def evn(trigger: str, recorded: str | None, occurred: str | None = None) -> str:
    """EVN: the trigger (EVN-1), when the change was recorded (EVN-2) and when it happened (EVN-6)."""
    return segment("EVN", escape(trigger), dtm(recorded), "", "", "", dtm(occurred))


def pid(vocabulary: ReverseVocabulary, patient: dict, base_url: str) -> str:
    """PID from a Patient: identifiers (plus the server's own id as a resource identifier),
    names, birth date, sex, addresses, phones, marital status, death."""
    identifiers = [cx(vocabulary, identifier) for identifier in patient.get("identifier") or []]
    identifiers.append(components(escape(patient.get("id")), "", "", subcomponents("", escape(f"{base_url}/Patient"), "URI"), "RI"))
    telecoms = patient.get("telecom") or []
    home = [xtn(vocabulary, t) for t in telecoms if t.get("use") != "work"]
    work = [xtn(vocabulary, t) for t in telecoms if t.get("use") == "work"]
    sex = vocabulary.v2_code("AdministrativeSex", "http://hl7.org/fhir/administrative-gender", patient.get("gender"))
    deceased_at = patient.get("deceasedDateTime")
    deceased = patient.get("deceasedBoolean")
    indicator = "Y" if deceased_at or deceased else ("N" if deceased is False else "")
    fields = [""] * 30
    fields[0] = "1"
    fields[2] = repetitions(identifiers)
    fields[4] = repetitions(xpn(vocabulary, name) for name in patient.get("name") or [])
    fields[6] = dtm(patient.get("birthDate"))
    fields[7] = escape(sex)
    fields[10] = repetitions(xad(vocabulary, address) for address in patient.get("address") or [])
    fields[12] = repetitions(home)
    fields[13] = repetitions(work)
    fields[15] = code_of(vocabulary, patient.get("maritalStatus"), "MaritalStatus")
    fields[28] = dtm(deceased_at)
    fields[29] = indicator
    return segment("PID", *fields)


def patient_class(vocabulary: ReverseVocabulary, encounter: dict | None) -> str:
    """PV1-2 from Encounter.class (N without an encounter, U when the class has no v2 code)."""
    if encounter is None:
        return "N"
    coding = encounter.get("class") or {}
    return vocabulary.v2_code("PatientClass[EncounterClass]", coding.get("system"), coding.get("code")) or "U"


def pv1(vocabulary: ReverseVocabulary, encounter: dict | None) -> str:
    """PV1 from an Encounter: class, location, hospital service, visit number, discharge
    disposition, admit and discharge times; `PV1|1|N` when the message has no encounter."""
    if encounter is None:
        return segment("PV1", "1", "N")
    fields = [""] * 45
    fields[0] = "1"
    fields[1] = escape(patient_class(vocabulary, encounter))
    locations = encounter.get("location") or []
    if locations:
        place = locations[0].get("location") or {}
        fields[2] = escape(place.get("display") or (place.get("reference") or "").rsplit("/", 1)[-1])
    service = encounter.get("serviceType")
    fields[9] = code_of(vocabulary, service, "HospitalService") or escape(((service or {}).get("coding") or [{}])[0].get("code"))
    identifiers = encounter.get("identifier") or []
    fields[18] = cx(vocabulary, identifiers[0]) if identifiers else escape(encounter.get("id"))
    disposition = (encounter.get("hospitalization") or {}).get("dischargeDisposition") or {}
    fields[35] = escape(((disposition.get("coding") or [{}])[0]).get("code"))
    period = encounter.get("period") or {}
    fields[43] = dtm(period.get("start"))
    fields[44] = dtm(period.get("end"))
    return segment("PV1", *fields)
