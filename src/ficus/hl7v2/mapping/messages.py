"""Message maps: which segments of each message become which resources, and how they link.

`MESSAGE_MAPS` is keyed by message code and trigger event (`ADT^A01`); a message whose event is
not there is stored but not mapped. Each map walks the segments in order, keeping the patient,
encounter, order and result it is in, as the IG's message sheets (ADT_A01, ORU_R01, ...) do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ficus.hl7v2.errors import V2Error
from ficus.hl7v2.mapping import orders, scheduling, segments, vaccination
from ficus.hl7v2.mapping.bundle import token
from ficus.hl7v2.mapping.context import MappingContext
from ficus.hl7v2.mapping.segments import Mapped
from ficus.hl7v2.message import Segment


def add(ctx: MappingContext, mapped: Mapped | None, authoritative: bool = True) -> str | None:
    """Put a mapped resource in the Bundle: replaced when this message is its authority (upsert),
    else created only when absent (ensure); returns its fullUrl."""
    if mapped is None:
        return None
    if not authoritative and mapped.identifier is not None:
        return ctx.builder.ensure(mapped.resource, mapped.identifier)
    return ctx.builder.upsert(mapped.resource, mapped.identifier, mapped.key)


def _patient(ctx: MappingContext, authoritative: bool) -> None:
    pid = ctx.message.segment("PID")
    if pid is None:
        raise V2Error("100", f"{ctx.header.message_type} has no PID segment; a patient is required", None)
    pd1 = _following(ctx, pid, "PD1")
    mapped = segments.patient(ctx, pid, pd1)
    ctx.patient = add(ctx, mapped, authoritative)
    ctx.patient_key = token(mapped.identifier) if mapped.identifier else ""


def _encounter(ctx: MappingContext, authoritative: bool) -> None:
    pv1 = ctx.message.segment("PV1")
    if pv1 is None or (pv1.value(2) in ("", "N") and not pv1.value(19) and not pv1.value(44)):
        return
    mapped = segments.encounter(ctx, pv1, _following(ctx, pv1, "PV2"))
    ctx.encounter = add(ctx, mapped, authoritative)
    ctx.encounter_key = token(mapped.identifier) if mapped.identifier else "|".join(mapped.key or ())


def _following(ctx: MappingContext, segment: Segment, name: str) -> Segment | None:
    """The `name` segment that belongs to `segment` (the next ones, before the next PID)."""
    position = ctx.message.segments.index(segment)
    for candidate in ctx.message.segments[position + 1:]:
        if candidate.name == name:
            return candidate
        if candidate.name == segment.name or candidate.name == "PID":
            return None
    return None


def _notes(ctx: MappingContext, segment: Segment, passing: tuple[str, ...] = ()) -> list[str]:
    """The text of the NTE segments right after `segment` (or after the `passing` ones that
    belong to it, such as the TQ1 of an SCH)."""
    position = ctx.message.segments.index(segment)
    texts = []
    for candidate in ctx.message.segments[position + 1:]:
        if candidate.name in passing:
            continue
        if candidate.name != "NTE":
            break
        text = "\n".join(rep.raw(1) for rep in candidate.repetitions(3)).strip()
        if text:
            texts.append(text)
    return texts


# -- ADT ---------------------------------------------------------------------------------------


def admission(ctx: MappingContext) -> None:
    """ADT A01-A13, A28, A31: the patient and encounter this message is the authority for, with
    next of kin, allergies, diagnoses, procedures, insurance and observations."""
    _patient(ctx, authoritative=True)
    _encounter(ctx, authoritative=True)
    builders: dict[str, Callable[[MappingContext, Segment], Mapped | None]] = {
        "NK1": segments.related_person, "AL1": segments.allergy, "PR1": segments.procedure,
        "IN1": segments.coverage,
    }
    diagnoses = []
    occurrences: dict[str, int] = {}
    for segment in ctx.message:
        if segment.name in builders:
            add(ctx, builders[segment.name](ctx, segment))
        elif segment.name == "DG1":
            reference = add(ctx, segments.condition(ctx, segment))
            if reference:
                diagnoses.append((reference, segment.value(6)))
        elif segment.name == "OBX":
            code = segment.value(3)
            occurrences[code] = occurrences.get(code, 0) + 1
            scope = f"{ctx.patient_key}|{segment.value(14)}"
            add(ctx, orders.observation(ctx, segment, scope, "", occurrences[code], _notes(ctx, segment)))
    _link_diagnoses(ctx, diagnoses)


def _link_diagnoses(ctx: MappingContext, diagnoses: list[tuple[str, str]]) -> None:
    encounter = ctx.builder.resource(ctx.encounter) if ctx.encounter else None
    if encounter is None or not diagnoses:
        return
    linked = []
    for rank, (reference, kind) in enumerate(diagnoses, start=1):
        diagnosis: dict = {"condition": {"reference": reference}, "rank": rank}
        use = ctx.vocabulary.translate("DiagnosisType", kind)
        if use:
            diagnosis["use"] = {"coding": [dict(use)]}
        linked.append(diagnosis)
    encounter["diagnosis"] = linked


def merge(ctx: MappingContext) -> None:
    """ADT A40: for each PID/MRG pair, the surviving patient (upserted) and the merged one
    (inactive, `replaced-by` the survivor; kept as a stub when it was never seen)."""
    for pid in ctx.message.all("PID"):
        mrg = _following(ctx, pid, "MRG")
        if mrg is None:
            raise V2Error("100", "ADT^A40 needs an MRG segment after each PID", pid.where())
        survivor = segments.patient(ctx, pid, _following(ctx, pid, "PD1"))
        survivor_url = add(ctx, survivor)
        merged = segments.merged_patient(ctx, mrg, survivor_url)
        merged_url = add(ctx, merged)
        if merged_url and merged_url != survivor_url:
            survivor.resource["link"] = [{"other": {"reference": merged_url}, "type": "replaces"}]
            ctx.merges.append(merged_url)
        ctx.patient = ctx.patient or survivor_url


# -- orders and results --------------------------------------------------------------------------


def results(ctx: MappingContext) -> None:
    """ORU R01: per OBR a DiagnosticReport with its OBX Observations."""
    _patient(ctx, authoritative=False)
    _encounter(ctx, authoritative=False)
    orc: Segment | None = None
    report: Mapped | None = None
    report_time = ""
    report_results: list[str] = []
    occurrences: dict[str, int] = {}
    for segment in ctx.message:
        if segment.name == "ORC":
            orc = segment
        elif segment.name == "OBR":
            _close_report(ctx, report, report_results)
            report, report_results, occurrences = orders.diagnostic_report(ctx, orc, segment), [], {}
            report_time, orc = segment.value(7), None
        elif segment.name == "OBX":
            scope = orders.report_scope(report) if report else f"{ctx.patient_key}|{segment.value(14)}"
            code = segment.value(3) + "^" + segment.value(4)
            occurrences[code] = occurrences.get(code, 0) + 1
            observed = orders.observation(ctx, segment, scope, report_time, occurrences[code], _notes(ctx, segment))
            reference = add(ctx, observed)
            if report is not None and reference:
                report_results.append(reference)
    _close_report(ctx, report, report_results)


def _close_report(ctx: MappingContext, report: Mapped | None, references: list[str]) -> None:
    if report is None:
        return
    if references:
        report.resource["result"] = [{"reference": reference} for reference in references]
    add(ctx, report)


def requests(ctx: MappingContext) -> None:
    """ORM O01, OML O21: per ORC/OBR order a ServiceRequest (orders without an OBR, such as
    pharmacy or diet orders, are reported as not mapped)."""
    _patient(ctx, authoritative=False)
    _encounter(ctx, authoritative=False)
    orc: Segment | None = None
    mapped_any = False
    occurrences: dict[str, int] = {}
    order: Mapped | None = None
    for segment in ctx.message:
        if segment.name == "ORC":
            if orc is not None:
                _order_without_request(ctx, orc)
            orc = segment
        elif segment.name == "OBR":
            order = orders.service_request(ctx, orc, segment, _notes(ctx, segment))
            add(ctx, order)
            orc, mapped_any = None, True
        elif segment.name == "OBX" and order is not None:
            code = segment.value(3) + "^" + segment.value(4)
            occurrences[code] = occurrences.get(code, 0) + 1
            add(ctx, orders.observation(ctx, segment, orders.report_scope(order), "", occurrences[code], _notes(ctx, segment)))
    if orc is not None:
        _order_without_request(ctx, orc)
    if not mapped_any:
        ctx.warn("100", "The message holds no ORC/OBR order; only its patient was mapped")


def _order_without_request(ctx: MappingContext, orc: Segment) -> None:
    ctx.warn("100", "This order has no OBR segment (pharmacy, diet or supply orders are not mapped yet)", orc.where())


def vaccinations(ctx: MappingContext) -> None:
    """VXU V04: per ORC/RXA an Immunization (RXR route and site); OBX after an RXA become
    Observations `partOf` that Immunization."""
    _patient(ctx, authoritative=False)
    _encounter(ctx, authoritative=False)
    orc: Segment | None = None
    immunization: str | None = None
    scope = ""
    occurrences: dict[str, int] = {}
    for segment in ctx.message:
        if segment.name == "ORC":
            orc = segment
        elif segment.name == "RXA":
            mapped = vaccination.immunization(ctx, orc, segment, _following_in_group(ctx, segment, "RXR"))
            immunization = add(ctx, mapped)
            scope, occurrences, orc = token(mapped.identifier) if mapped.identifier else "|".join(mapped.key or ()), {}, None
        elif segment.name == "OBX":
            code = segment.value(3) + "^" + segment.value(4)
            occurrences[code] = occurrences.get(code, 0) + 1
            within = scope or f"{ctx.patient_key}|{segment.value(14)}"
            observed = orders.observation(ctx, segment, within, "", occurrences[code], _notes(ctx, segment))
            if immunization and observed is not None:
                observed.resource["partOf"] = [{"reference": immunization}]
            add(ctx, observed)


def _following_in_group(ctx: MappingContext, segment: Segment, name: str) -> Segment | None:
    position = ctx.message.segments.index(segment)
    for candidate in ctx.message.segments[position + 1:]:
        if candidate.name == name:
            return candidate
        if candidate.name in ("ORC", "RXA", "OBX"):
            return None
    return None


# -- scheduling --------------------------------------------------------------------------------


def schedule(ctx: MappingContext) -> None:
    """SIU S12-S17, S26: the Appointment of the SCH segment with its resources (AIS/AIG/AIL/AIP)."""
    sch = ctx.message.segment("SCH")
    if sch is None:
        raise V2Error("100", f"{ctx.header.message_type} has no SCH segment", None)
    _patient(ctx, authoritative=False)
    resources = [s for s in ctx.message if s.name in scheduling.RESOURCE_FIELDS]
    add(ctx, scheduling.appointment(ctx, sch, _following(ctx, sch, "TQ1"), resources, _notes(ctx, sch, ("TQ1",))))


@dataclass(frozen=True)
class MessageMap:
    """One supported event: the map that turns it into resources."""

    event: str
    build: Callable[[MappingContext], None]


_ADMISSION_EVENTS = ("A01", "A02", "A03", "A04", "A05", "A08", "A11", "A13", "A28", "A31")
_SCHEDULE_EVENTS = tuple(scheduling.TRIGGER_STATUS)

MESSAGE_MAPS: dict[str, MessageMap] = {
    map_.event: map_
    for map_ in (
        *(MessageMap(f"ADT^{event}", admission) for event in _ADMISSION_EVENTS),
        MessageMap("ADT^A40", merge),
        MessageMap("ORU^R01", results),
        MessageMap("ORM^O01", requests),
        MessageMap("OML^O21", requests),
        MessageMap("VXU^V04", vaccinations),
        *(MessageMap(f"SIU^{event}", schedule) for event in _SCHEDULE_EVENTS),
    )
}
