"""Segment maps after the v2-to-FHIR IG (`PID[Patient]`, `PV1[Encounter]`, `OBX[Observation]`...).

Each map is a field table (see `fields`) plus a short function for what a table cannot say
(choices between fields, values that depend on the trigger event). A function returns the
resource and how it is identified; the message maps decide how it enters the Bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ficus.hl7v2.errors import V2Error
from ficus.hl7v2.mapping import datatypes as dt
from ficus.hl7v2.mapping import entities
from ficus.hl7v2.mapping import fields as f
from ficus.hl7v2.mapping.context import MappingContext
from ficus.hl7v2.message import Segment

EXT = "http://hl7.org/fhir/StructureDefinition/"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


@dataclass
class Mapped:
    """A resource and its identity: an identifier to find it by, else a natural key."""

    resource: dict
    identifier: dict | None = None
    key: tuple[str, ...] | None = None


# -- PID, PD1 -> Patient ------------------------------------------------------------------------

PATIENT = (
    f.Field(2, "identifier[]", f.identifier),
    f.Field(3, "identifier[]", f.identifier),
    f.Field(4, "identifier[]", f.identifier),
    f.Field(5, "name[]", f.human_name),
    f.Field(6, "extension[]", f.extension(EXT + "patient-mothersMaidenName", "String", lambda c, v: v.sub(1)[1] or None)),
    f.Field(7, "birthDate", f.date),
    f.Field(8, "gender", f.coded("AdministrativeSex")),
    f.Field(9, "name[]", f.human_name),
    f.Field(11, "address[]", f.address),
    f.Field(13, "telecom[]", f.telecom("home")),
    f.Field(14, "telecom[]", f.telecom("work")),
    f.Field(15, "communication[].language", f.concept()),
    f.Field(16, "maritalStatus", f.concept("MaritalStatus")),
    f.Field(17, "extension[]", f.extension(EXT + "patient-religion", "CodeableConcept", f.concept("Religion"))),
    f.Field(24, "multipleBirthBoolean", f.yes_no),
    f.Field(25, "multipleBirthInteger", f.positive_int),
    f.Field(29, "deceasedDateTime", f.date_time),
    f.Field(30, "deceasedBoolean", f.yes_no),
)

PATIENT_ADDITIONAL = (
    f.Field(3, "managingOrganization", lambda ctx, xon: entities.organization_from_xon(ctx, xon)),
    f.Field(4, "generalPractitioner[]", f.practitioner),
)


def patient(ctx: MappingContext, pid: Segment, pd1: Segment | None = None) -> Mapped:
    """PID[Patient] (+ PD1[Patient]); identified by its medical record number (PID-3 of type
    MR, else the first PID-3, else PID-2 or PID-4)."""
    resource = f.fill(ctx, pid, {"resourceType": "Patient"}, PATIENT)
    if "multipleBirthInteger" in resource:
        resource.pop("multipleBirthBoolean", None)
    if "deceasedDateTime" in resource:
        resource.pop("deceasedBoolean", None)
    _birth_time(ctx, pid, resource)
    _social_security_number(pid, resource)
    if pd1 is not None:
        f.fill(ctx, pd1, resource, PATIENT_ADDITIONAL)
    return Mapped(resource, identifier=_primary_identifier(ctx, pid))


def _birth_time(ctx: MappingContext, pid: Segment, resource: dict) -> None:
    born = pid.value(7)
    if len(born) > 8 and "birthDate" in resource:
        moment = dt.date_time(ctx, born)
        resource["_birthDate"] = {"extension": [{"url": EXT + "patient-birthTime", "valueDateTime": moment}]}


def _social_security_number(pid: Segment, resource: dict) -> None:
    ssn = pid.value(19)
    if ssn and not any(i.get("value") == ssn for i in resource.get("identifier", [])):
        resource.setdefault("identifier", []).append({"system": "http://hl7.org/fhir/sid/us-ssn", "value": ssn})


def _primary_identifier(ctx: MappingContext, pid: Segment) -> dict:
    candidates = pid.repetitions(3)
    chosen = next((cx for cx in candidates if cx[5] == "MR" and cx[1]), None)
    chosen = chosen or next((cx for cx in candidates if cx[1]), None)
    chosen = chosen or next((cx for field in (2, 4) for cx in pid.repetitions(field) if cx[1]), None)
    found = dt.identifier(ctx, chosen) if chosen is not None else None
    if found is None:
        raise V2Error("101", "PID-3 (patient identifier list) holds no identifier", pid.where(3))
    return {"system": found["system"], "value": found["value"]}


def merged_patient(ctx: MappingContext, mrg: Segment, survivor: str | None) -> Mapped:
    """MRG (ADT A40): the patient merged away, inactive and `replaced-by` the survivor. Only
    these elements are given; the store merges them onto the patient if it exists."""
    identifiers = [i for i in (dt.identifier(ctx, cx) for cx in mrg.repetitions(1)) if i]
    if not identifiers:
        raise V2Error("101", "MRG-1 (prior patient identifier list) holds no identifier", mrg.where(1))
    resource: dict[str, Any] = {"resourceType": "Patient", "identifier": identifiers, "active": False}
    if survivor:
        resource["link"] = [{"other": {"reference": survivor}, "type": "replaced-by"}]
    names = [n for n in (dt.human_name(ctx, xpn) for xpn in mrg.repetitions(7)) if n]
    if names:
        resource["name"] = names
    chosen = next((i for i in identifiers if i.get("type", {}).get("coding", [{}])[0].get("code") == "MR"), identifiers[0])
    return Mapped(resource, identifier={"system": chosen["system"], "value": chosen["value"]})


# -- PV1, PV2 -> Encounter ----------------------------------------------------------------------

ENCOUNTER = (
    f.Field(3, "location[]", f.located("active")),
    f.Field(4, "type[]", f.concept("AdmissionType")),
    f.Field(6, "location[]", f.located("completed")),
    f.Field(7, "participant[]", f.participant("ATND", "attender")),
    f.Field(8, "participant[]", f.participant("REF", "referrer")),
    f.Field(9, "participant[]", f.participant("CON", "consultant")),
    f.Field(10, "serviceType", f.concept("HospitalService")),
    f.Field(11, "location[]", f.located("active")),
    f.Field(13, "hospitalization.reAdmission", f.concept()),
    f.Field(14, "hospitalization.admitSource", f.concept()),
    f.Field(17, "participant[]", f.participant("ADM", "admitter")),
    f.Field(19, "identifier[]", f.typed_identifier("VN", "CX")),
    f.Field(36, "hospitalization.dischargeDisposition", f.concept()),
    f.Field(44, "period.start", f.date_time),
    f.Field(45, "period.end", f.date_time),
    f.Field(50, "identifier[]", f.identifier),
)

ENCOUNTER_ADDITIONAL = (
    f.Field(3, "reasonCode[]", f.concept()),
    f.Field(25, "priority", f.concept("EncounterPriority")),
)

UNKNOWN_CLASS = {"system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "code": "UNK", "display": "unknown"}


def encounter(ctx: MappingContext, pv1: Segment, pv2: Segment | None = None) -> Mapped:
    """PV1[Encounter] (+ PV2[Encounter]): class and status from PV1-2, the trigger event and
    PV1-45; identified by the visit number PV1-19, else by patient and admit time."""
    resource: dict[str, Any] = {"resourceType": "Encounter", "status": _encounter_status(ctx, pv1)}
    patient_class = pv1.value(2)
    resource["class"] = ctx.vocabulary.translate("PatientClass[EncounterClass]", patient_class) or UNKNOWN_CLASS
    f.fill(ctx, pv1, resource, ENCOUNTER)
    if patient_class == "P":
        for place in resource.get("location", [])[:1]:
            place["status"] = "planned"
    if pv2 is not None:
        f.fill(ctx, pv2, resource, ENCOUNTER_ADDITIONAL)
    if ctx.patient:
        resource["subject"] = {"reference": ctx.patient}
    visit = next((i for i in resource.get("identifier", [])), None)
    if visit is not None:
        return Mapped(resource, identifier={"system": visit["system"], "value": visit["value"]})
    admitted = pv1.value(44)
    key = ("encounter", ctx.patient_key, admitted) if admitted else ("encounter", *_message_key(ctx))
    return Mapped(resource, key=key)


def _encounter_status(ctx: MappingContext, pv1: Segment) -> str:
    if pv1.value(45):
        return "finished"
    by_event = ctx.vocabulary.code("Event[EncounterStatus]", ctx.header.trigger_event)
    if by_event and by_event != "unknown":
        return by_event
    return ctx.vocabulary.code("PatientClass[EncounterStatus]", pv1.value(2)) or "unknown"


def _message_key(ctx: MappingContext) -> tuple[str, str]:
    return ctx.header.control_id, ctx.message.digest[:16]


# -- NK1 -> RelatedPerson, AL1 -> AllergyIntolerance, DG1 -> Condition, PR1 -> Procedure --------

RELATED_PERSON = (
    f.Field(2, "name[]", f.human_name),
    f.Field(3, "relationship[]", f.concept("Relationship")),
    f.Field(4, "address[]", f.address),
    f.Field(5, "telecom[]", f.telecom()),
    f.Field(6, "telecom[]", f.telecom("work")),
    f.Field(7, "relationship[]", f.concept("ContactRole")),
    f.Field(8, "period.start", f.date),
    f.Field(9, "period.end", f.date),
    f.Field(12, "identifier[]", f.identifier),
    f.Field(15, "gender", f.coded("AdministrativeSex")),
    f.Field(16, "birthDate", f.date),
    f.Field(20, "communication[].language", f.concept()),
    f.Field(30, "name[]", f.human_name),
    f.Field(31, "telecom[]", f.telecom()),
    f.Field(32, "address[]", f.address),
    f.Field(33, "identifier[]", f.identifier),
)


def related_person(ctx: MappingContext, nk1: Segment) -> Mapped | None:
    """NK1[RelatedPerson], for the message's patient; keyed by patient, name and relationship."""
    resource = f.fill(ctx, nk1, {"resourceType": "RelatedPerson"}, RELATED_PERSON)
    if not any(key in resource for key in ("name", "identifier", "telecom")):
        return None
    resource["patient"] = {"reference": ctx.patient}
    names = resource.get("name", [{}])[0]
    key = ("related-person", ctx.patient_key, names.get("family", ""), " ".join(names.get("given", [])), nk1.value(3))
    return Mapped(resource, key=key)


ALLERGY = (
    f.Field(2, "category[]", f.coded("AllergenType[AllergyIntoleranceCategory]")),
    f.Field(2, "type", f.coded("AllergyType")),
    f.Field(3, "code", f.concept()),
    f.Field(4, "criticality", f.coded("AllergySeverity[AllergyIntolerance.criticality]")),
    f.Field(6, "onsetDateTime", f.date_time),
)


def allergy(ctx: MappingContext, al1: Segment) -> Mapped | None:
    """AL1[AllergyIntolerance]: active, for the patient; keyed by patient and allergen."""
    resource = f.fill(ctx, al1, {"resourceType": "AllergyIntolerance"}, ALLERGY)
    if "code" not in resource:
        return None
    resource["clinicalStatus"] = {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active",
    }]}
    resource["patient"] = {"reference": ctx.patient}
    reactions = al1.repetitions(5)
    if reactions:
        reaction: dict[str, Any] = {"manifestation": [{"text": r[1]} for r in reactions]}
        severity = ctx.vocabulary.code("AllergySeverity[AllergyIntolerance.reaction.severity]", al1.value(4))
        if severity:
            reaction["severity"] = severity
        resource["reaction"] = [reaction]
    allergen = al1.first(3)
    return Mapped(resource, key=("allergy", ctx.patient_key, allergen[3], allergen[1] or allergen[2]))


CONDITION = (
    f.Field(3, "code", f.concept()),
    f.Field(5, "onsetDateTime", f.date_time),
    f.Field(16, "asserter", f.practitioner),
    f.Field(19, "recordedDate", f.date_time),
    f.Field(20, "identifier[]", lambda ctx, ei: dt.entity_identifier(ctx, ei)),
)


def condition(ctx: MappingContext, dg1: Segment) -> Mapped | None:
    """DG1[Condition]: an encounter diagnosis; identified by DG1-20, else by patient, encounter
    and code."""
    resource = f.fill(ctx, dg1, {"resourceType": "Condition"}, CONDITION)
    description = dg1.value(4)
    if description:
        resource.setdefault("code", {})["text"] = description
    if "code" not in resource:
        return None
    resource["category"] = [{"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "encounter-diagnosis",
    }]}]
    if dg1.value(21) == "D":
        resource["verificationStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "entered-in-error",
        }]}
    resource["subject"] = {"reference": ctx.patient}
    if ctx.encounter:
        resource["encounter"] = {"reference": ctx.encounter}
    if "identifier" in resource:
        return Mapped(resource, identifier=_plain(resource["identifier"][0]))
    code = dg1.first(3)
    return Mapped(resource, key=("condition", ctx.patient_key, ctx.encounter_key, code[3], code[1] or description))


PROCEDURE = (
    f.Field(3, "code", f.concept()),
    f.Field(5, "performedDateTime", f.date_time),
    f.Field(19, "identifier[]", lambda ctx, ei: dt.entity_identifier(ctx, ei)),
)


def procedure(ctx: MappingContext, pr1: Segment) -> Mapped | None:
    """PR1[Procedure]: completed, for the patient; identified by PR1-19, else by patient, code, time."""
    resource = f.fill(ctx, pr1, {"resourceType": "Procedure", "status": "completed"}, PROCEDURE)
    if pr1.value(4):
        resource.setdefault("code", {})["text"] = pr1.value(4)
    if "code" not in resource:
        return None
    resource["subject"] = {"reference": ctx.patient}
    if ctx.encounter:
        resource["encounter"] = {"reference": ctx.encounter}
    if "identifier" in resource:
        return Mapped(resource, identifier=_plain(resource["identifier"][0]))
    code = pr1.first(3)
    return Mapped(resource, key=("procedure", ctx.patient_key, code[3], code[1], pr1.value(5)))


COVERAGE = (
    f.Field(12, "period.start", f.date),
    f.Field(13, "period.end", f.date),
    f.Field(15, "type", f.concept()),
    f.Field(17, "relationship", f.concept("Relationship")),
    f.Field(36, "subscriberId", f.text),
)


def coverage(ctx: MappingContext, in1: Segment) -> Mapped | None:
    """IN1[Coverage]: the patient's insurance with its payor (IN1-3/IN1-4), plan (IN1-2 as the
    plan class), period and policy number; keyed by patient, payor, plan and policy number."""
    company, name = in1.first(3), in1.first(4)
    payor_identifier = dt.identifier(ctx, company)
    payor = entities.organization(ctx, name[1], _plain(payor_identifier) if payor_identifier else None)
    if payor is None:
        return None
    resource = f.fill(ctx, in1, {"resourceType": "Coverage", "status": "active"}, COVERAGE)
    resource["beneficiary"] = {"reference": ctx.patient}
    resource["payor"] = [payor]
    plan = in1.first(2)
    if plan[1]:
        kind = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "plan"}]}
        resource["class"] = [{"type": kind, "value": plan[1], **({"name": plan[2]} if plan[2] else {})}]
    if in1.value(1).isdigit() and int(in1.value(1)) > 0:
        resource["order"] = int(in1.value(1))
    key = ("coverage", ctx.patient_key, company[1] or name[1], plan[1], in1.value(36))
    return Mapped(resource, key=key)


def _plain(identifier: dict) -> dict:
    return {"system": identifier["system"], "value": identifier["value"]}
