"""v2 data types to FHIR data types, one function per IG data-type map (e.g. `XPN[HumanName]`).

Each function takes the mapping context and one `Composite` (a field repetition, or a component
holding subcomponents) and returns FHIR JSON, or None when there is nothing to map. A value
that breaks its type's rules raises `DataTypeError`; the caller adds where it was.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from ficus.hl7v2.mapping.context import MappingContext
from ficus.hl7v2.message import Composite

_DTM = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,6})?\s*([+-]\d{4})?")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_EMAIL_EQUIPMENT = ("Internet", "X.400")
IDENTIFIER_TYPES = "http://terminology.hl7.org/CodeSystem/v2-0203"


class DataTypeError(ValueError):
    """A value that does not follow its v2 data type."""


# -- dates and times -------------------------------------------------------------------------


def date_time(ctx: MappingContext, text: str) -> str | None:
    """DTM/TS -> FHIR dateTime at the precision sent; a time without offset gets the site's."""
    parts = _dtm_parts(text)
    if parts is None:
        return None
    year, month, day, hour, *_ = parts
    fraction = parts[6]
    if hour is None:
        return "-".join(p for p in (year, month, day) if p)
    moment = _moment(ctx, parts)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        stamp += fraction
    return stamp + _format_offset(moment.utcoffset() or timedelta(0))


def date(ctx: MappingContext, text: str) -> str | None:
    """DT/DTM -> FHIR date (the date part, at its precision)."""
    parts = _dtm_parts(text)
    if parts is None:
        return None
    return "-".join(p for p in parts[:3] if p)


def instant(ctx: MappingContext, text: str) -> str | None:
    """DTM -> FHIR instant; None when the value is less precise than minutes."""
    parts = _dtm_parts(text)
    if parts is None or parts[4] is None:
        return None
    return date_time(ctx, text)


def _dtm_parts(text: str) -> tuple[Any, ...] | None:
    text = text.strip()
    if not text:
        return None
    match = _DTM.fullmatch(text)
    if match is None:
        raise DataTypeError(f"{text!r} is not a v2 date/time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        raise DataTypeError(f"{text!r} is not a valid date/time") from None
    if offset and (int(offset[1:3]) > 14 or int(offset[3:]) > 59):
        raise DataTypeError(f"{text!r} has an impossible time-zone offset")
    return year, month, day, hour, minute, second, fraction, offset


def _moment(ctx: MappingContext, parts: tuple[Any, ...]) -> datetime:
    year, month, day, hour, minute, second, _, offset = parts
    naive = datetime(int(year), int(month or 1), int(day or 1), int(hour), int(minute or 0), int(second or 0))
    if offset:
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:]))
        return naive.replace(tzinfo=timezone(delta if offset[0] == "+" else -delta))
    return naive.replace(tzinfo=ctx.timezone)


def _format_offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def period(ctx: MappingContext, start: str, end: str) -> dict | None:
    """Two DTMs (or a DR's components) -> Period."""
    result = {key: value for key, value in (("start", date_time(ctx, start)), ("end", date_time(ctx, end))) if value}
    return result or None


# -- numbers and quantities ------------------------------------------------------------------


def decimal(text: str) -> Decimal | None:
    """NM -> decimal, keeping the digits sent."""
    text = text.strip()
    if not text:
        return None
    if not _NUMBER.fullmatch(text):
        raise DataTypeError(f"{text!r} is not a number")
    try:
        return Decimal(text.lstrip("+"))
    except InvalidOperation:
        raise DataTypeError(f"{text!r} is not a number") from None


def quantity(ctx: MappingContext, value: Decimal | None, units: Composite) -> dict | None:
    """A number with CWE units -> Quantity (UCUM code and system only when the units are UCUM)."""
    result: dict[str, Any] = {}
    if value is not None:
        result["value"] = value
    if units:
        result["unit"] = units[2] or units[1]
        system = ctx.vocabulary.system_uri(units[3])
        if units[1] and system:
            result["system"] = system
            result["code"] = units[1]
    return result or None


# -- codes ------------------------------------------------------------------------------------


def codeable_concept(ctx: MappingContext, cwe: Composite, table: str | None = None) -> dict | None:
    """CWE/CE/CNE -> CodeableConcept: the IG concept map's coding first (if `table` maps the
    code), then the codings sent (identifier, alternate, second alternate), then what stored
    ConceptMaps give for a local code, then the text."""
    codings = []
    if table:
        mapped = ctx.vocabulary.translate(table, cwe[1])
        if mapped:
            codings.append(dict(mapped))
    for code, display, system, version in ((1, 2, 3, 7), (4, 5, 6, 8), (10, 11, 12, 13)):
        coding = _coding(ctx, cwe[code], cwe[display], cwe[system], cwe[version])
        if coding and not any(_same_code(coding, known) for known in codings):
            codings.append(coding)
    for translated in ctx.vocabulary.local_translations(ctx.facility, cwe[3], cwe[1]):
        if not any(_same_code(translated, known) for known in codings):
            codings.append(dict(translated))
    if table and len(codings) > 1 and "system" not in codings[1] and codings[1].get("code") == cwe[1]:
        del codings[1]  # the v2 code without a known system adds nothing to its translation
    result: dict[str, Any] = {}
    if codings:
        result["coding"] = codings
    text = cwe[9] or (cwe[2] if not cwe[1] else "")
    if text:
        result["text"] = text
    return result or None


def coding(ctx: MappingContext, cwe: Composite, table: str | None = None) -> dict | None:
    concept = codeable_concept(ctx, cwe, table)
    return concept["coding"][0] if concept and "coding" in concept else None


def code(ctx: MappingContext, value: str, table: str) -> str | None:
    """ID/IS/CWE.1 -> FHIR code through the IG concept map `table`."""
    return ctx.vocabulary.code(table, value)


def _coding(ctx: MappingContext, code_value: str, display: str, system: str, version: str) -> dict | None:
    if not code_value and not display:
        return None
    result: dict[str, str] = {}
    uri = ctx.vocabulary.system_uri(system)
    if uri and code_value:
        result["system"] = uri
    if version:
        result["version"] = version
    if code_value:
        result["code"] = code_value
    if display:
        result["display"] = display
    return result


def _same_code(a: dict, b: dict) -> bool:
    return a.get("code") == b.get("code") and a.get("system") == b.get("system")


# -- identifiers ----------------------------------------------------------------------------


def authority_system(ctx: MappingContext, hd: Composite) -> str:
    """HD (assigning authority) -> identifier system: an OID, UUID or URI when given, a known
    authority (e.g. USSSA), else `urn:ficus:hl7v2:<namespace or sending facility>`."""
    namespace, universal, kind = hd[1], hd[2], hd[3].upper()
    if universal:
        if kind == "ISO" or (not kind and re.fullmatch(r"[0-2](\.\d+)+", universal)):
            return f"urn:oid:{universal}"
        if kind == "UUID":
            return f"urn:uuid:{universal.lower()}"
        if kind in ("URI", "URL") or universal.startswith(("http://", "https://", "urn:")):
            return universal
    known = ctx.vocabulary.identifier_system(namespace) if namespace else None
    return known or ctx.local_system(namespace or universal or None)


def identifier(ctx: MappingContext, cx: Composite) -> dict | None:
    """CX -> Identifier (value, system from the assigning authority, type, period, assigner)."""
    value = cx[1]
    if not value:
        return None
    authority = cx.sub(4)
    result: dict[str, Any] = {"system": authority_system(ctx, authority), "value": value}
    type_code = cx[5]
    if type_code:
        result["type"] = identifier_type(ctx, type_code)
    valid = period(ctx, cx[7], cx[8])
    if valid:
        result["period"] = valid
    if authority[1]:
        result["assigner"] = {"display": authority[1]}
    return result


def entity_identifier(ctx: MappingContext, ei: Composite, type_code: str | None = None) -> dict | None:
    """EI (entity id, namespace, universal id, type) -> Identifier, typed e.g. PLAC or FILL."""
    value = ei[1]
    if not value:
        return None
    authority = Composite(((ei[2],), (ei[3],), (ei[4],)))
    result: dict[str, Any] = {"system": authority_system(ctx, authority), "value": value}
    if type_code:
        result["type"] = identifier_type(ctx, type_code)
    return result


def identifier_type(ctx: MappingContext, type_code: str) -> dict:
    mapped = ctx.vocabulary.translate("IdentifierType", type_code)
    if mapped:
        return {"coding": [dict(mapped)]}
    return {"coding": [{"system": IDENTIFIER_TYPES, "code": type_code}]}


# -- people, places, contacts ----------------------------------------------------------------


def human_name(ctx: MappingContext, xpn: Composite) -> dict | None:
    """XPN -> HumanName (family, given, suffix, prefix, use, period)."""
    return _name(ctx, family=xpn.sub(1)[1], given=[xpn[2], xpn[3]], suffix=[xpn[4], xpn[6], xpn[14]],
                 prefix=xpn[5], use=xpn[7], start=xpn[12] or xpn.sub(10)[1], end=xpn[13] or xpn.sub(10)[2])


def person_name(ctx: MappingContext, xcn: Composite) -> dict | None:
    """The name in an XCN (components 2-7, 10)."""
    return _name(ctx, family=xcn.sub(2)[1], given=[xcn[3], xcn[4]], suffix=[xcn[5], xcn[7]],
                 prefix=xcn[6], use=xcn[10], start="", end="")


def _name(ctx: MappingContext, family: str, given: list[str], suffix: list[str], prefix: str,
          use: str, start: str, end: str) -> dict | None:
    result: dict[str, Any] = {}
    name_use = ctx.vocabulary.code("NameType", use)
    if name_use:
        result["use"] = name_use
    if family:
        result["family"] = family
    given = [name for name in given if name]
    if given:
        result["given"] = given
    if prefix:
        result["prefix"] = [prefix]
    suffix = [name for name in suffix if name]
    if suffix:
        result["suffix"] = suffix
    if not (family or given):
        return None
    valid = period(ctx, start, end)
    if valid:
        result["period"] = valid
    return result


def name_text(name: dict | None) -> str:
    if not name:
        return ""
    return " ".join([*name.get("prefix", []), *name.get("given", []), name.get("family", "")]).strip()


def address(ctx: MappingContext, xad: Composite) -> dict | None:
    """XAD -> Address (lines, city, state, postal code, country, use/type, district, period)."""
    lines = [_street(xad.sub(1)), xad[2], xad[19]]
    result: dict[str, Any] = {}
    kind = xad[7]
    use = ctx.vocabulary.code("AddressType[Use]", kind)
    address_type = ctx.vocabulary.code("AddressType[Type]", kind)
    if use:
        result["use"] = use
    if address_type:
        result["type"] = address_type
    lines = [line for line in lines if line]
    if lines:
        result["line"] = lines
    for key, index in (("city", 3), ("district", 9), ("state", 4), ("postalCode", 5), ("country", 6)):
        if xad[index]:
            result[key] = xad[index]
    if not (lines or any(key in result for key in ("city", "state", "postalCode", "country"))):
        return None
    valid = period(ctx, xad[13] or xad.sub(12)[1], xad[14] or xad.sub(12)[2])
    if valid:
        result["period"] = valid
    return result


def _street(sad: Composite) -> str:
    """SAD -> one address line: the street address, completed by the street name and dwelling
    number when it does not already hold them (`1000&Hospital Lane` -> `1000 Hospital Lane`)."""
    line = sad[1]
    for part in (sad[2], sad[3]):
        if part and part not in line:
            line = f"{line} {part}".strip()
    return line


def contact_point(ctx: MappingContext, xtn: Composite, default_use: str | None = None) -> dict | None:
    """XTN -> ContactPoint: e-mail from XTN.4, a phone from XTN.1/12 or the parts 5-8."""
    equipment = xtn[3]
    if equipment in _EMAIL_EQUIPMENT:
        value = xtn[4]
    else:
        value = xtn[1] or xtn[12] or _phone_from_parts(xtn)
    if not value:
        return None
    result: dict[str, Any] = {}
    system = ctx.vocabulary.translate("TelecommunicationEquipmentType", equipment)
    use = ctx.vocabulary.code("TelecommunicationUseCode", xtn[2])
    if system and system["system"].endswith("contact-point-use"):
        result["system"], use = "phone", use or system["code"]
    elif system:
        result["system"] = system["code"]
    else:
        result["system"] = "email" if "@" in value else "phone"
    result["value"] = value
    if use or default_use:
        result["use"] = use or default_use
    rank = xtn[18]
    if rank.isdigit() and int(rank) > 0:
        result["rank"] = int(rank)
    valid = period(ctx, xtn[13], xtn[14])
    if valid:
        result["period"] = valid
    return result


def _phone_from_parts(xtn: Composite) -> str:
    country, area, local, extension = xtn[5], xtn[6], xtn[7], xtn[8]
    if not local:
        return ""
    number = " ".join(part for part in (f"+{country}" if country else "", f"({area})" if area else "", local) if part)
    return f"{number} ext. {extension}" if extension else number


def text(ctx: MappingContext, value: Composite) -> str | None:
    """ST/ID/IS -> string."""
    return value[1] or None
