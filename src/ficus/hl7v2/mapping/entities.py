"""Data types that name a thing of their own: XCN -> Practitioner, PL -> Location, XON/HD ->
Organization. Each returns a Reference; the resource is added to the Bundle when v2 gives it an
identifier (created only if absent), else the Reference carries only a display.
"""

from __future__ import annotations

from typing import Any

from ficus.hl7v2.mapping import datatypes as dt
from ficus.hl7v2.mapping.context import MappingContext
from ficus.hl7v2.message import Composite


def practitioner(ctx: MappingContext, xcn: Composite) -> dict | None:
    """XCN[Practitioner]: id (XCN.1 with authority XCN.9), name; a Reference to it."""
    name = dt.person_name(ctx, xcn)
    if not xcn[1]:
        return {"display": dt.name_text(name)} if name else None
    identifier: dict[str, Any] = {"system": dt.authority_system(ctx, xcn.sub(9)), "value": xcn[1]}
    if xcn[13]:
        identifier["type"] = dt.identifier_type(ctx, xcn[13])
    resource: dict[str, Any] = {"resourceType": "Practitioner", "identifier": [identifier]}
    if name:
        resource["name"] = [name]
    reference = {"reference": ctx.builder.ensure(resource, identifier)}
    display = dt.name_text(name)
    if display:
        reference["display"] = display
    return reference


def location(ctx: MappingContext, pl: Composite, status: str | None = None) -> dict | None:
    """PL[Location]: a Location named by its parts (bed, room, point of care, building, floor,
    facility). Its identifier is PL.10 when sent, else the parts themselves, so the same place
    sent again is the same Location."""
    parts = [pl[3], pl[2], pl[1], pl[7], pl[8], pl.sub(4)[1]]
    if not any(parts) and not pl[10]:
        return None
    name = ", ".join(part for part in parts if part) or pl[10]
    if pl[10]:
        identifier = dt.entity_identifier(ctx, pl.sub(10)) or {"system": ctx.local_system(), "value": pl[10]}
    else:
        key = "^".join([pl[1], pl[2], pl[3], pl.sub(4)[1], pl[7], pl[8]])
        identifier = {"system": ctx.local_system(pl.sub(4)[1] or None) + ":location", "value": key}
    resource: dict[str, Any] = {"resourceType": "Location", "identifier": [identifier], "name": name, "mode": "instance"}
    if pl[9]:
        resource["description"] = pl[9]
    if status:
        resource["status"] = status
    return {"reference": ctx.builder.ensure(resource, identifier), "display": name}


def organization(ctx: MappingContext, name: str, identifier: dict | None) -> dict | None:
    """An Organization by name and identifier (XON, HD or CWE as the segment gives them)."""
    if identifier is None:
        return {"display": name} if name else None
    resource: dict[str, Any] = {"resourceType": "Organization", "identifier": [identifier]}
    if name:
        resource["name"] = name
    reference = {"reference": ctx.builder.ensure(resource, identifier)}
    if name:
        reference["display"] = name
    return reference


def organization_from_xon(ctx: MappingContext, xon: Composite) -> dict | None:
    """XON[Organization]: name XON.1, identifier XON.10 (or the old XON.3) assigned by XON.6."""
    value = xon[10] or xon[3]
    identifier = {"system": dt.authority_system(ctx, xon.sub(6)), "value": value} if value else None
    return organization(ctx, xon[1], identifier)


def organization_from_cwe(ctx: MappingContext, cwe: Composite) -> dict | None:
    """CWE[Organization] (e.g. RXA-17 manufacturer, OBX-15 producer): code and name."""
    if not cwe[1]:
        return organization(ctx, cwe[2], None)
    system = ctx.vocabulary.system_uri(cwe[3]) or ctx.local_system(cwe[3] or None)
    return organization(ctx, cwe[2], {"system": system, "value": cwe[1]})
