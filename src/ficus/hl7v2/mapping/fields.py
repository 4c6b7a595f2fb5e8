"""Field tables: `(v2 field, FHIR path, converter)` rows that fill a resource from a segment.

A path is dotted; a step ending in `[]` appends (one item per field repetition), any other step
sets a single value from the first repetition. `Field(5, "name[]", human_name)` reads like the
IG's `PID-5 -> name[1] XPN[HumanName]` row, and adding a row is all it takes to map one more field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ficus.hl7v2.errors import V2Error
from ficus.hl7v2.mapping import datatypes as dt
from ficus.hl7v2.mapping import entities
from ficus.hl7v2.mapping.context import MappingContext
from ficus.hl7v2.message import Composite, Segment

Converter = Callable[[MappingContext, Composite], Any]


@dataclass(frozen=True)
class Field:
    """One row of a segment map."""

    field: int
    path: str
    convert: Converter

    @property
    def repeats(self) -> bool:
        return "[]" in self.path


def fill(ctx: MappingContext, segment: Segment, resource: dict, table: Sequence[Field]) -> dict:
    """Apply `table` to `segment`, writing into `resource`; bad values name their field."""
    for row in table:
        repetitions = segment.repetitions(row.field)
        for rep in repetitions if row.repeats else repetitions[:1]:
            try:
                value = row.convert(ctx, rep)
            except dt.DataTypeError as error:
                raise V2Error("102", str(error), segment.where(row.field)) from None
            if value is not None:
                put(resource, row.path, value)
    return resource


def put(resource: dict, path: str, value: Any) -> None:
    """Set (or, for a `[]` step, append) `value` at the dotted `path` of `resource`."""
    node = resource
    steps = path.split(".")
    for position, step in enumerate(steps):
        last = position == len(steps) - 1
        if step.endswith("[]"):
            items = node.setdefault(step[:-2], [])
            if last:
                items.append(value)
                return
            child: dict = {}
            items.append(child)
            node = child
        elif last:
            node[step] = value
        else:
            node = node.setdefault(step, {})


# -- converter factories: the vocabulary or constant a row needs ------------------------------


def concept(table: str | None = None) -> Converter:
    """CWE -> CodeableConcept, translated through the IG concept map `table` when given."""
    return lambda ctx, cwe: dt.codeable_concept(ctx, cwe, table)


def coding(table: str | None = None) -> Converter:
    return lambda ctx, cwe: dt.coding(ctx, cwe, table)


def coded(table: str) -> Converter:
    """ID/IS/CWE -> code through the IG concept map `table`."""
    return lambda ctx, value: dt.code(ctx, value[1], table)


def telecom(default_use: str | None = None) -> Converter:
    return lambda ctx, xtn: dt.contact_point(ctx, xtn, default_use)


def typed_identifier(type_code: str, kind: str = "EI") -> Converter:
    """EI or CX -> Identifier with a v2-0203 type (e.g. PLAC, FILL, VN) unless one was sent."""

    def convert(ctx: MappingContext, value: Composite) -> dict | None:
        if kind == "CX":
            found = dt.identifier(ctx, value)
            if found is not None and "type" not in found:
                found["type"] = dt.identifier_type(ctx, type_code)
            return found
        return dt.entity_identifier(ctx, value, type_code)

    return convert


def extension(url: str, kind: str, convert: Converter) -> Converter:
    """Wrap a converted value as an extension `{url, value<kind>}`."""

    def wrapped(ctx: MappingContext, value: Composite) -> dict | None:
        converted = convert(ctx, value)
        return None if converted is None else {"url": url, f"value{kind}": converted}

    return wrapped


def participant(type_code: str, display: str, system: str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType") -> Converter:
    """XCN -> an Encounter.participant with a ParticipationType."""

    def convert(ctx: MappingContext, xcn: Composite) -> dict | None:
        who = entities.practitioner(ctx, xcn)
        if who is None:
            return None
        kind = {"coding": [{"system": system, "code": type_code, "display": display}]}
        return {"type": [kind], "individual": who}

    return convert


def located(status: str) -> Converter:
    """PL -> an Encounter.location with `status`."""

    def convert(ctx: MappingContext, pl: Composite) -> dict | None:
        where = entities.location(ctx, pl)
        return None if where is None else {"location": where, "status": status}

    return convert


def date_time(ctx: MappingContext, value: Composite) -> str | None:
    return dt.date_time(ctx, value[1])


def date(ctx: MappingContext, value: Composite) -> str | None:
    return dt.date(ctx, value[1])


def text(ctx: MappingContext, value: Composite) -> str | None:
    return value[1] or None


def yes_no(ctx: MappingContext, value: Composite) -> bool | None:
    return {"Y": True, "N": False}.get(value[1].upper())


def positive_int(ctx: MappingContext, value: Composite) -> int | None:
    number = value[1]
    if not number:
        return None
    if not number.isdigit():
        raise dt.DataTypeError(f"{number!r} is not a whole number")
    return int(number) or None


def identifier(ctx: MappingContext, cx: Composite) -> dict | None:
    return dt.identifier(ctx, cx)


def human_name(ctx: MappingContext, xpn: Composite) -> dict | None:
    return dt.human_name(ctx, xpn)


def address(ctx: MappingContext, xad: Composite) -> dict | None:
    return dt.address(ctx, xad)


def practitioner(ctx: MappingContext, xcn: Composite) -> dict | None:
    return entities.practitioner(ctx, xcn)
