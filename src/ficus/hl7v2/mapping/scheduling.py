"""SCH (+ TQ1, NTE, AIS, AIG, AIL, AIP) -> Appointment, after the IG's `SCH[Appointment]` and
`AIx[Appointment]` maps."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ficus.hl7v2.errors import V2Error
from ficus.hl7v2.mapping import datatypes as dt
from ficus.hl7v2.mapping import entities
from ficus.hl7v2.mapping import fields as f
from ficus.hl7v2.mapping.context import MappingContext
from ficus.hl7v2.mapping.segments import Mapped
from ficus.hl7v2.message import Segment

# The appointment status each SIU trigger implies when SCH-25 does not say.
TRIGGER_STATUS = {
    "S12": "booked", "S13": "booked", "S14": "booked", "S15": "cancelled",
    "S16": "cancelled", "S17": "entered-in-error", "S26": "noshow",
}
# A participant's status (required in FHIR) from the filler status of its AIx segment.
PARTICIPANT_STATUS = {
    "booked": "accepted", "arrived": "accepted", "fulfilled": "accepted", "checked-in": "accepted",
    "pending": "tentative", "waitlist": "tentative", "proposed": "needs-action",
    "cancelled": "declined", "noshow": "declined", "entered-in-error": "declined",
}
_MINUTES = {"M": 1, "MIN": 1, "H": 60, "HR": 60, "HOUR": 60, "D": 1440}

APPOINTMENT = (
    f.Field(1, "identifier[]", f.typed_identifier("PLAC")),
    f.Field(2, "identifier[]", f.typed_identifier("FILL")),
    f.Field(6, "cancelationReason", f.concept()),
    f.Field(7, "reasonCode[]", f.concept()),
    f.Field(8, "appointmentType", f.concept()),
)

# Resource segment -> (field of the resource, field of its type, start field, duration field,
# duration units field, filler status field).
RESOURCE_FIELDS = {
    "AIS": (3, None, 4, 7, 8, 10),
    "AIG": (3, 4, 8, 11, 12, 14),
    "AIL": (3, 4, 6, 9, 10, 12),
    "AIP": (3, 4, 6, 9, 10, 12),
}


def appointment(ctx: MappingContext, sch: Segment, tq1: Segment | None, resources: list[Segment],
                notes: list[str]) -> Mapped:
    """The appointment, its time, and its participants: the patient, then each AIS service,
    AIG resource, AIL location and AIP person. Identified by SCH-2 (filler), else SCH-1."""
    status = (ctx.vocabulary.code("FillerStatusCodes[Appointment]", sch.value(25))
              or TRIGGER_STATUS.get(ctx.header.trigger_event, "booked"))
    resource: dict[str, Any] = {"resourceType": "Appointment", "status": status}
    f.fill(ctx, sch, resource, APPOINTMENT)
    _timing(ctx, sch, tq1, resources, resource)
    services = [s for s in resources if s.name == "AIS"]
    service_types = [c for c in (dt.codeable_concept(ctx, s.first(3)) for s in services) if c]
    if service_types:
        resource["serviceType"] = service_types
    participants = [{"actor": {"reference": ctx.patient}, "status": "accepted"}]
    participants += [p for p in (_participant(ctx, segment, status) for segment in resources) if p]
    resource["participant"] = participants
    if notes:
        resource["comment"] = "\n".join(notes)
    filler, placer = sch.first(2), sch.first(1)
    chosen = dt.entity_identifier(ctx, filler) if filler[1] else dt.entity_identifier(ctx, placer)
    if chosen is not None:
        return Mapped(resource, identifier={"system": chosen["system"], "value": chosen["value"]})
    return Mapped(resource, key=("appointment", ctx.patient_key, resource.get("start", "")))


def _timing(ctx: MappingContext, sch: Segment, tq1: Segment | None, resources: list[Segment], resource: dict) -> None:
    """Start and end from TQ1-7/8, else SCH-11 (TQ.4/TQ.5), else the first resource's start and
    duration; minutesDuration from SCH-9/SCH-10."""
    candidates = []
    if tq1 is not None:
        candidates.append((tq1, 7, tq1.value(7), tq1.value(8)))
    timing = sch.first(11)
    candidates.append((sch, 11, timing[4], timing[5]))
    for segment, field, start, end in candidates:
        if start:
            resource["start"] = _instant(ctx, segment, field, start)
            if end:
                resource["end"] = _instant(ctx, segment, field, end)
            break
    if "start" not in resource:
        for segment in resources:
            _, _, start_field, duration_field, units_field, _ = RESOURCE_FIELDS[segment.name]
            start = segment.value(start_field)
            if start:
                resource["start"] = _instant(ctx, segment, start_field, start)
                end = _plus(ctx, start, segment.value(duration_field), segment.value(units_field))
                if end:
                    resource["end"] = end
                break
    minutes = _minutes(sch.value(9), sch.value(10))
    if minutes:
        resource["minutesDuration"] = minutes


def _participant(ctx: MappingContext, segment: Segment, appointment_status: str) -> dict | None:
    resource_field, type_field, start_field, duration_field, units_field, status_field = RESOURCE_FIELDS[segment.name]
    value = segment.first(resource_field)
    if not value:
        return None
    participant: dict[str, Any] = {}
    if segment.name == "AIP":
        actor = entities.practitioner(ctx, value)
    elif segment.name == "AIL":
        actor = entities.location(ctx, value)
    else:
        actor = {"display": value[2] or value[1]}
    if actor:
        participant["actor"] = actor
    kind = dt.codeable_concept(ctx, segment.first(type_field)) if type_field else None
    if kind:
        participant["type"] = [kind]
    filler_status = ctx.vocabulary.code("FillerStatusCodes[Appointment]", segment.value(status_field))
    participant["status"] = PARTICIPANT_STATUS.get(filler_status or appointment_status, "needs-action")
    start = segment.value(start_field)
    if start:
        window = {"start": _instant(ctx, segment, start_field, start)}
        end = _plus(ctx, start, segment.value(duration_field), segment.value(units_field))
        if end:
            window["end"] = end
        participant["period"] = window
    return participant


def _instant(ctx: MappingContext, segment: Segment, field: int, text: str) -> str:
    try:
        found = dt.instant(ctx, text)
    except dt.DataTypeError as error:
        raise V2Error("102", str(error), segment.where(field)) from None
    if found is None:
        raise V2Error("102", f"{text!r} is not precise enough for an appointment time (minutes needed)", segment.where(field))
    return found


def _plus(ctx: MappingContext, start: str, duration: str, units: str) -> str | None:
    minutes = _minutes(duration, units)
    moment = dt.instant(ctx, start)
    if not minutes or moment is None:
        return None
    end = datetime.fromisoformat(moment) + timedelta(minutes=minutes)
    return end.isoformat()


def _minutes(duration: str, units: str) -> int | None:
    if not duration or not duration.replace(".", "", 1).isdigit():
        return None
    factor = _MINUTES.get(units.split("^")[0].upper() or "M")
    if factor is None:
        return None
    minutes = int(float(duration) * factor)
    return minutes if minutes > 0 else None
