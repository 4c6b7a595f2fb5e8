"""RXA (+ ORC, RXR) -> Immunization, after the IG's `RXA[Immunization]`, `RXR[Immunization]` and
`ORC[Immunization]` maps."""

from __future__ import annotations

from typing import Any

from ficus.hl7v2.errors import V2Error
from ficus.hl7v2.mapping import datatypes as dt
from ficus.hl7v2.mapping import entities
from ficus.hl7v2.mapping import fields as f
from ficus.hl7v2.mapping.context import MappingContext
from ficus.hl7v2.mapping.orders import order_identifiers
from ficus.hl7v2.mapping.segments import Mapped
from ficus.hl7v2.message import Composite, Segment

PERFORMER_FUNCTIONS = "http://terminology.hl7.org/CodeSystem/v2-0443"
UNKNOWN_AMOUNT = "999"
NEW_RECORD = "00"

IMMUNIZATION = (
    f.Field(3, "occurrenceDateTime", f.date_time),
    f.Field(5, "vaccineCode", f.concept()),
    f.Field(15, "lotNumber", f.text),
    f.Field(16, "expirationDate", f.date),
    f.Field(17, "manufacturer", lambda ctx, cwe: entities.organization_from_cwe(ctx, cwe)),
    f.Field(18, "statusReason", f.concept()),
    f.Field(19, "reasonCode[]", f.concept()),
    f.Field(22, "recorded", f.date_time),
)

ROUTE = (
    f.Field(1, "route", f.concept("RouteOfAdministration")),
    f.Field(2, "site", f.concept()),
)


def immunization(ctx: MappingContext, orc: Segment | None, rxa: Segment, rxr: Segment | None) -> Mapped:
    """One administered (or historical, or refused) vaccination; identified by the filler
    order number, else the placer's, else by patient, vaccine and date."""
    resource: dict[str, Any] = {"resourceType": "Immunization", "status": _status(ctx, rxa)}
    placer, filler = order_identifiers(ctx, orc, None)
    identifiers = [i for i in (placer, filler) if i]
    if identifiers:
        resource["identifier"] = identifiers
    f.fill(ctx, rxa, resource, IMMUNIZATION)
    if "vaccineCode" not in resource:
        raise V2Error("101", "RXA-5 (administered code) is empty", rxa.where(5))
    if "occurrenceDateTime" not in resource:
        raise V2Error("101", "RXA-3 (date/time start of administration) is empty", rxa.where(3))
    resource["patient"] = {"reference": ctx.patient}
    if ctx.encounter:
        resource["encounter"] = {"reference": ctx.encounter}
    _source(ctx, rxa.first(9), resource)
    _dose(ctx, rxa, resource)
    performers = _performers(ctx, orc, rxa)
    if performers:
        resource["performer"] = performers
    if rxr is not None:
        f.fill(ctx, rxr, resource, ROUTE)
    if filler or placer:
        found = filler or placer
        return Mapped(resource, identifier={"system": found["system"], "value": found["value"]})
    vaccine = rxa.first(5)
    return Mapped(resource, key=("immunization", ctx.patient_key, vaccine[3], vaccine[1], rxa.value(3)))


def _status(ctx: MappingContext, rxa: Segment) -> str:
    if rxa.value(21).upper() == "D":
        return "entered-in-error"
    return ctx.vocabulary.code("CompletionStatus", rxa.value(20)) or "completed"


def _source(ctx: MappingContext, information_source: Composite, resource: dict) -> None:
    """RXA-9 (NIP001): 00 is a new record from the administering provider, others historical."""
    if not information_source:
        return
    resource["primarySource"] = information_source[1] == NEW_RECORD
    if information_source[1] != NEW_RECORD:
        origin = dt.codeable_concept(ctx, information_source)
        if origin:
            resource["reportOrigin"] = origin


def _dose(ctx: MappingContext, rxa: Segment, resource: dict) -> None:
    amount = rxa.value(6)
    if not amount or amount == UNKNOWN_AMOUNT:
        return
    try:
        dose = dt.quantity(ctx, dt.decimal(amount), rxa.first(7))
    except dt.DataTypeError as error:
        raise V2Error("102", str(error), rxa.where(6)) from None
    if dose:
        resource["doseQuantity"] = dose


def _performers(ctx: MappingContext, orc: Segment | None, rxa: Segment) -> list[dict]:
    performers = []
    for segment, field, function in ((rxa, 10, "AP"), (orc, 12, "OP")):
        if segment is None:
            continue
        for xcn in segment.repetitions(field):
            actor = entities.practitioner(ctx, xcn)
            if actor:
                kind = {"coding": [{"system": PERFORMER_FUNCTIONS, "code": function}]}
                performers.append({"function": kind, "actor": actor})
    return performers
