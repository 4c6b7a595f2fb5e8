"""Order and result segments: ORC/OBR -> ServiceRequest, OBR -> DiagnosticReport, OBX -> Observation
(IG maps `ORC[ServiceRequest]`, `OBR[ServiceRequest]`, `OBR[DiagnosticReport]`, `OBX[Observation]`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ficus.hl7v2.errors import V2Error
from ficus.hl7v2.mapping import datatypes as dt
from ficus.hl7v2.mapping import entities
from ficus.hl7v2.mapping import fields as f
from ficus.hl7v2.mapping.bundle import token
from ficus.hl7v2.mapping.context import MappingContext
from ficus.hl7v2.mapping.segments import Mapped
from ficus.hl7v2.message import Composite, Segment

# Result statuses the IG's OBX-11 map leaves open, given their nearest FHIR status.
OBSERVATION_STATUS_FALLBACK = {
    "I": "registered", "O": "registered", "R": "preliminary", "S": "preliminary",
    "V": "final", "B": "amended", "N": "cancelled", "X": "cancelled", "W": "entered-in-error",
}
_RANGE = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*(?:-|–|to)\s*([+-]?\d+(?:\.\d+)?)\s*")
_BOUND = re.compile(r"\s*(<=|>=|<|>|≤|≥)\s*([+-]?\d+(?:\.\d+)?)\s*")
OBSERVATION_VALUE_EXTENSION = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.value"
_COMPARATORS = {"<": "<", "<=": "<=", ">": ">", ">=": ">="}


# -- ORC/OBR -> ServiceRequest -----------------------------------------------------------------

REQUEST = (
    f.Field(4, "code", f.concept()),
    f.Field(6, "occurrenceDateTime", f.date_time),
    f.Field(31, "reasonCode[]", f.concept()),
)


def order_identifiers(ctx: MappingContext, orc: Segment | None, obr: Segment | None) -> tuple[dict | None, dict | None]:
    """The placer and filler order numbers: ORC-2/ORC-3, else OBR-2/OBR-3."""
    def pick(orc_field: int, obr_field: int, kind: str) -> dict | None:
        for segment, number in ((orc, orc_field), (obr, obr_field)):
            if segment is not None and segment.value(number):
                return dt.entity_identifier(ctx, segment.first(number), kind)
        return None

    return pick(2, 2, "PLAC"), pick(3, 3, "FILL")


def service_request(ctx: MappingContext, orc: Segment | None, obr: Segment, notes: list[str]) -> Mapped:
    """ORC + OBR -> ServiceRequest (an order); identified by its placer, else filler number."""
    resource: dict[str, Any] = {"resourceType": "ServiceRequest", "status": _request_status(ctx, orc), "intent": "order"}
    placer, filler = order_identifiers(ctx, orc, obr)
    identifiers = [i for i in (placer, filler) if i]
    if identifiers:
        resource["identifier"] = identifiers
    if orc is not None and orc.value(4):
        resource["requisition"] = dt.entity_identifier(ctx, orc.first(4), "PGN")
    f.fill(ctx, obr, resource, REQUEST)
    _require(resource, "code", obr, 4, "OBR-4 (universal service identifier) is empty")
    priority = _priority(ctx, orc, obr)
    if priority:
        resource["priority"] = priority
    resource["subject"] = {"reference": ctx.patient}
    if ctx.encounter:
        resource["encounter"] = {"reference": ctx.encounter}
    authored = orc.value(9) if orc is not None else ""
    if authored:
        resource["authoredOn"] = _at(ctx, orc, 9, authored)
    requester = _first_practitioner(ctx, (orc, 12), (obr, 16))
    if requester:
        resource["requester"] = requester
    if notes:
        resource["note"] = [{"text": note} for note in notes]
    return _identified(resource, placer or filler, ("order", ctx.patient_key, _code_key(obr.first(4)), obr.value(7)))


def _request_status(ctx: MappingContext, orc: Segment | None) -> str:
    if orc is None:
        return "active"
    return (ctx.vocabulary.code("OrderStatus", orc.value(5))
            or ctx.vocabulary.code("OrderControlCode[ServiceRequest.status]", orc.value(1))
            or "unknown")


def _priority(ctx: MappingContext, orc: Segment | None, obr: Segment) -> str | None:
    for segment, field, component in ((orc, 7, 6), (obr, 27, 6), (obr, 5, 1)):
        if segment is not None:
            found = ctx.vocabulary.code("ExtendedPriorityCodes", segment.first(field)[component])
            if found:
                return found
    return None


# -- OBR -> DiagnosticReport -------------------------------------------------------------------

REPORT = (
    f.Field(4, "code", f.concept()),
    f.Field(22, "issued", lambda ctx, v: dt.instant(ctx, v[1])),
    f.Field(24, "category[]", f.concept("DiagnosticServiceSectionID")),
)


def diagnostic_report(ctx: MappingContext, orc: Segment | None, obr: Segment) -> Mapped:
    """OBR -> DiagnosticReport; identified by the filler order number, else the placer's."""
    status = ctx.vocabulary.code("ResultStatus[Non-Queries]", obr.value(25)) or "unknown"
    resource: dict[str, Any] = {"resourceType": "DiagnosticReport", "status": status}
    placer, filler = order_identifiers(ctx, orc, obr)
    identifiers = [i for i in (placer, filler) if i]
    if identifiers:
        resource["identifier"] = identifiers
    if placer:
        resource["basedOn"] = [{"type": "ServiceRequest", "identifier": placer}]
    f.fill(ctx, obr, resource, REPORT)
    _require(resource, "code", obr, 4, "OBR-4 (universal service identifier) is empty")
    resource["subject"] = {"reference": ctx.patient}
    if ctx.encounter:
        resource["encounter"] = {"reference": ctx.encounter}
    start, end = obr.value(7), obr.value(8)
    if start and end:
        resource["effectivePeriod"] = _at(ctx, obr, 7, lambda: dt.period(ctx, start, end))
    elif start:
        resource["effectiveDateTime"] = _at(ctx, obr, 7, start)
    interpreter = _ndl_practitioner(ctx, obr.first(32))
    if interpreter:
        resource["resultsInterpreter"] = [interpreter]
    return _identified(resource, filler or placer, ("report", ctx.patient_key, _code_key(obr.first(4)), start))


def _ndl_practitioner(ctx: MappingContext, ndl: Composite) -> dict | None:
    """NDL.1 is a CNN (id&family&given&...&authority): read it as an XCN."""
    cnn = ndl.sub(1)
    if not cnn:
        return None
    xcn = Composite(tuple((cnn[i],) for i in range(1, 9)) + ((cnn[9], cnn[10], cnn[11]),))
    return entities.practitioner(ctx, xcn)


# -- OBX -> Observation --------------------------------------------------------------------------

OBSERVATION = (
    f.Field(3, "code", f.concept()),
    f.Field(8, "interpretation[]", f.concept("InterpretationCodes")),
    f.Field(14, "effectiveDateTime", f.date_time),
    f.Field(16, "performer[]", f.practitioner),
    f.Field(17, "method", f.concept()),
    f.Field(20, "bodySite", f.concept()),
    f.Field(21, "identifier[]", lambda ctx, ei: dt.entity_identifier(ctx, ei)),
    f.Field(23, "performer[]", lambda ctx, xon: entities.organization_from_xon(ctx, xon)),
)


def observation(ctx: MappingContext, obx: Segment, scope: str, default_time: str, occurrence: int,
                notes: list[str]) -> Mapped | None:
    """OBX[Observation]: code, value of any v2 value type, units, reference range,
    interpretation, status. Identified by OBX-21, else by its scope (report or patient), code,
    sub-id, time and occurrence, so a corrected result updates the same Observation."""
    status_code = obx.value(11)
    status = (ctx.vocabulary.code("ObservationResultStatusCodesInterpretation", status_code)
              or OBSERVATION_STATUS_FALLBACK.get(status_code.upper(), "unknown"))
    resource: dict[str, Any] = {"resourceType": "Observation", "status": status}
    f.fill(ctx, obx, resource, OBSERVATION)
    if "code" not in resource:
        ctx.warn("101", "OBX-3 (observation identifier) is empty; this OBX was not mapped", obx.where(3))
        return None
    resource["subject"] = {"reference": ctx.patient}
    if ctx.encounter:
        resource["encounter"] = {"reference": ctx.encounter}
    if "effectiveDateTime" not in resource and default_time:
        resource["effectiveDateTime"] = dt.date_time(ctx, default_time)
    units = obx.first(6)
    _observation_value(ctx, obx, units, resource)
    ranges = reference_range(ctx, obx.value(7) and obx.first(7).raw(1).strip(), units)
    if ranges:
        resource["referenceRange"] = [ranges]
    if notes:
        resource["note"] = [{"text": note} for note in notes]
    own = resource.get("identifier", [None])[0]
    key = ("observation", scope, _code_key(obx.first(3)), obx.value(4), str(occurrence))
    return _identified(resource, own, key)


def _observation_value(ctx: MappingContext, obx: Segment, units: Composite, resource: dict) -> None:
    value_type = obx.value(2).upper()
    values = obx.repetitions(5)
    if not values:
        return
    convert = VALUE_TYPES.get(value_type)
    if convert is None:
        ctx.warn("102", f"OBX-2 value type {value_type or '(empty)'!r} is not mapped; the value is kept as text",
                 obx.where(2))
        convert = _string
    try:
        mapped = convert(ctx, values, units, obx)
    except dt.DataTypeError as error:
        raise V2Error("102", f"{error} (OBX-2 says {value_type})", obx.where(5)) from None
    if mapped is not None:
        name, value = mapped
        resource[name] = value


ValueConverter = Callable[[MappingContext, list[Composite], Composite, Segment], "tuple[str, Any] | None"]


def _numeric(ctx: MappingContext, values: list[Composite], units: Composite, obx: Segment) -> tuple[str, Any] | None:
    if len(values) > 1:
        ctx.warn("102", "OBX-5 repeats; an NM result keeps only its first value", obx.where(5))
    found = dt.quantity(ctx, dt.decimal(values[0][1]), units)
    return ("valueQuantity", found) if found else None


def _string(ctx: MappingContext, values: list[Composite], units: Composite, obx: Segment) -> tuple[str, Any] | None:
    separator = ctx.header.encoding_characters[:1] or "^"
    lines = [separator.join(rep.raw(i) for i in range(1, len(rep) + 1)).rstrip(separator) for rep in values]
    text = "\n".join(lines).strip()
    return ("valueString", text) if text else None


def _concept(ctx: MappingContext, values: list[Composite], units: Composite, obx: Segment) -> tuple[str, Any] | None:
    concepts = [c for c in (dt.codeable_concept(ctx, rep) for rep in values) if c]
    if not concepts:
        return None
    merged = {"coding": [coding for c in concepts for coding in c.get("coding", [])]}
    texts = [c["text"] for c in concepts if "text" in c]
    if texts:
        merged["text"] = "; ".join(texts)
    return "valueCodeableConcept", {k: v for k, v in merged.items() if v}


def _date_time(ctx: MappingContext, values: list[Composite], units: Composite, obx: Segment) -> tuple[str, Any] | None:
    found = dt.date_time(ctx, values[0][1])
    return ("valueDateTime", found) if found else None


def _time(ctx: MappingContext, values: list[Composite], units: Composite, obx: Segment) -> tuple[str, Any] | None:
    digits = values[0][1].split("+")[0].split("-")[0]
    if not re.fullmatch(r"\d{2}(\d{2}(\d{2}(\.\d+)?)?)?", digits):
        raise dt.DataTypeError(f"{values[0][1]!r} is not a v2 time (HH[MM[SS]])")
    hours, minutes, seconds = digits[:2], digits[2:4] or "00", digits[4:] or "00"
    return "valueTime", f"{hours}:{minutes}:{seconds}"


def _structured_numeric(ctx: MappingContext, values: list[Composite], units: Composite, obx: Segment) -> tuple[str, Any] | None:
    sn = values[0]
    comparator, first, separator, second = sn[1], dt.decimal(sn[2]), sn[3], dt.decimal(sn[4])
    if comparator == "<>" or separator in ("+", "."):
        return _string(ctx, values, units, obx)
    if separator == "-" and first is not None and second is not None:
        return "valueRange", {"low": dt.quantity(ctx, first, units), "high": dt.quantity(ctx, second, units)}
    if separator in (":", "/") and first is not None and second is not None:
        return "valueRatio", {"numerator": dt.quantity(ctx, first, units), "denominator": {"value": second}}
    found = dt.quantity(ctx, first, units)
    if found is None:
        return None
    if comparator in _COMPARATORS:
        found["comparator"] = _COMPARATORS[comparator]
    return "valueQuantity", found


def _numeric_range(ctx: MappingContext, values: list[Composite], units: Composite, obx: Segment) -> tuple[str, Any] | None:
    low, high = dt.decimal(values[0][1]), dt.decimal(values[0][2])
    found = {k: v for k, v in (("low", dt.quantity(ctx, low, units)), ("high", dt.quantity(ctx, high, units))) if v}
    return ("valueRange", found) if found else None


def _composite_quantity(ctx: MappingContext, values: list[Composite], units: Composite, obx: Segment) -> tuple[str, Any] | None:
    cq = values[0]
    found = dt.quantity(ctx, dt.decimal(cq[1]), cq.sub(2) if cq.sub(2) else units)
    return ("valueQuantity", found) if found else None


def _date_range(ctx: MappingContext, values: list[Composite], units: Composite, obx: Segment) -> tuple[str, Any] | None:
    found = dt.period(ctx, values[0].sub(1)[1], values[0].sub(2)[1])
    return ("valuePeriod", found) if found else None


def _attachment(ctx: MappingContext, values: list[Composite], units: Composite, obx: Segment) -> tuple[str, Any] | None:
    """ED (encapsulated data) or RP (reference pointer): an Attachment, which an R4 Observation
    holds in the R5 `Observation.value` extension, as the IG maps it."""
    value = values[0]
    attachment: dict[str, Any] = {}
    if obx.value(2).upper() == "RP":
        if value[1]:
            attachment["url"] = value[1]
        media, subtype = value[3], value[4]
    else:
        media, subtype = value[2], value[3]
        data = value[5]
        if data:
            attachment["data"] = data if value[4].upper() == "BASE64" else base64.b64encode(data.encode()).decode()
    if media and subtype and " " not in media + subtype:
        attachment["contentType"] = f"{media.lower()}/{subtype.lower()}"
    if not attachment:
        return None
    return "extension", [{"url": OBSERVATION_VALUE_EXTENSION, "valueAttachment": attachment}]


VALUE_TYPES: dict[str, ValueConverter] = {
    "NM": _numeric, "ST": _string, "TX": _string, "FT": _string,
    "CE": _concept, "CWE": _concept, "CNE": _concept, "CF": _concept, "IS": _concept, "ID": _concept,
    "SN": _structured_numeric, "NR": _numeric_range, "CQ": _composite_quantity,
    "DT": _date_time, "DTM": _date_time, "TS": _date_time, "TM": _time, "DR": _date_range,
    "ED": _attachment, "RP": _attachment,
}


def reference_range(ctx: MappingContext, text: str, units: Composite) -> dict | None:
    """OBX-7 -> referenceRange: low/high when the text is `a-b`, `<b` or `>a`; the text always."""
    if not text:
        return None
    found: dict[str, Any] = {}
    between = _RANGE.fullmatch(text)
    bound = _BOUND.fullmatch(text)
    if between:
        found["low"] = _simple(ctx, Decimal(between.group(1)), units)
        found["high"] = _simple(ctx, Decimal(between.group(2)), units)
    elif bound:
        side = "high" if bound.group(1) in ("<", "<=", "≤") else "low"
        found[side] = _simple(ctx, Decimal(bound.group(2)), units)
    found["text"] = text
    return found


def _simple(ctx: MappingContext, value: Decimal, units: Composite) -> dict:
    return dt.quantity(ctx, value, units) or {"value": value}


# -- shared helpers ---------------------------------------------------------------------------


def _identified(resource: dict, identifier: dict | None, key: tuple[str, ...]) -> Mapped:
    if identifier is not None:
        return Mapped(resource, identifier={"system": identifier["system"], "value": identifier["value"]})
    return Mapped(resource, key=key)


def _require(resource: dict, element: str, segment: Segment, field: int, text: str) -> None:
    if element not in resource:
        raise V2Error("101", text, segment.where(field))


def _code_key(cwe: Composite) -> str:
    return f"{cwe[3]}|{cwe[1] or cwe[2]}"


def _first_practitioner(ctx: MappingContext, *places: tuple[Segment | None, int]) -> dict | None:
    for segment, field in places:
        if segment is not None and segment.first(field):
            found = entities.practitioner(ctx, segment.first(field))
            if found:
                return found
    return None


def _at(ctx: MappingContext, segment: Segment, field: int, value: Any) -> Any:
    """Convert a date/time (or run a converter) and name the field if it is malformed."""
    try:
        return value() if callable(value) else dt.date_time(ctx, value)
    except dt.DataTypeError as error:
        raise V2Error("102", str(error), segment.where(field)) from None


def report_scope(report: Mapped) -> str:
    """The text that scopes a report's observations' keys."""
    if report.identifier is not None:
        return token(report.identifier)
    return "|".join(report.key or ())
