"""FHIR datatypes as v2 field text (CX, XPN, XAD, XTN, CWE, DTM, ...), escaped for `|^~\\&`.

Every function returns text ready to place in a field: values are escaped, components joined
with `^` and subcomponents with `&`, trailing empty components dropped. Codes are translated
with the v2-to-FHIR IG's concept maps read in reverse (`ReverseVocabulary`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import unquote

from ficus.hl7v2.mapping.context import LOCAL_SYSTEM_BASE
from ficus.hl7v2.mapping.vocabulary import Vocabulary

FIELD, COMPONENT, REPETITION, ESCAPE, SUBCOMPONENT = "|", "^", "~", "\\", "&"
ENCODING_CHARACTERS = COMPONENT + REPETITION + ESCAPE + SUBCOMPONENT
V2_TABLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-"
UCUM = "http://unitsofmeasure.org"

_ESCAPES = [(ESCAPE, "\\E\\"), (FIELD, "\\F\\"), (COMPONENT, "\\S\\"), (REPETITION, "\\R\\"), (SUBCOMPONENT, "\\T\\")]


def escape(value: Any) -> str:
    """A value as v2 text: separators as escape sequences, line breaks as `\\.br\\`."""
    if value is None:
        return ""
    text = format_decimal(value) if isinstance(value, Decimal) else str(value)
    for old, new in _ESCAPES:
        text = text.replace(old, new)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\.br\\")


def join(separator: str, parts: Iterable[str | None]) -> str:
    """Already escaped parts joined, without trailing empty ones."""
    return separator.join(part or "" for part in parts).rstrip(separator)


def components(*parts: str | None) -> str:
    return join(COMPONENT, parts)


def subcomponents(*parts: str | None) -> str:
    return join(SUBCOMPONENT, parts)


def repetitions(values: Iterable[str | None]) -> str:
    return REPETITION.join(value for value in values if value)


def format_decimal(value: Decimal | float) -> str:
    """A number as written in FHIR (72.50 stays 72.50), never in exponent form."""
    return format(value, "f") if isinstance(value, Decimal) else str(value)


# -- dates and times ------------------------------------------------------------------------

_DATE_TIME = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def dtm(value: str | None) -> str:
    """FHIR date/dateTime/instant -> v2 DTM at the same precision (`2024-01-02T10:30:00+01:00`
    -> `20240102103000+0100`)."""
    if not value:
        return ""
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return ""
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    fraction = (fraction or "")[:5]  # DTM carries at most four decimals of a second
    text = year + (month or "") + (day or "") + (hour or "") + (minute or "") + (second or "") + fraction
    if zone:
        text += "+0000" if zone == "Z" else zone.replace(":", "")
    return text


def time_of_day(value: str | None) -> str:
    """FHIR time (`10:30:00`) -> v2 TM (`103000`)."""
    return (value or "").replace(":", "")


# -- vocabulary -----------------------------------------------------------------------------


class ReverseVocabulary:
    """The IG's v2 -> FHIR concept maps read backwards: FHIR (system, code) -> the first v2 code
    mapped to it; and FHIR system URIs -> v2 coding-system names (HL7 table 0396)."""

    def __init__(self, vocabulary: Vocabulary | None = None) -> None:
        self.vocabulary = vocabulary or Vocabulary()
        self._maps: dict[str, dict[tuple[str, str], str]] = {}
        self._system_names: dict[str, str] | None = None

    def v2_code(self, table: str, system: str | None, code: str | None) -> str | None:
        if not code:
            return None
        found = self._maps.get(table)
        if found is None:
            found = {}
            for source, coding in self.vocabulary.concept_map(table).codes.items():
                found.setdefault((coding["system"], coding["code"]), source)
            self._maps[table] = found
        if system:
            return found.get((system, code))
        return next((source for (_, mapped), source in found.items() if mapped == code), None)

    def coding_system(self, uri: str | None) -> str:
        """The v2 name of a FHIR system (`http://loinc.org` -> `LN`, v2 tables -> `HL7nnnn`);
        other systems are sent as their URI."""
        if not uri:
            return ""
        if uri.startswith(V2_TABLE_SYSTEM) and uri[len(V2_TABLE_SYSTEM):].isdigit():
            return "HL7" + uri[len(V2_TABLE_SYSTEM):]
        if uri == UCUM:
            return "UCUM"
        if self._system_names is None:
            names: dict[str, str] = {}
            for name, system in _pairs("coding-systems").items():
                names.setdefault(system, name)
            self._system_names = names
        return self._system_names.get(uri, uri)

    def assigning_authority(self, system: str | None, assigner: str | None = None) -> str:
        """Identifier system -> HD (namespace&universal id&type): the reverse of the inbound
        `urn:ficus:hl7v2:<namespace>` and of the well-known authorities (USSSA, NPI)."""
        if not system:
            return escape(assigner)
        if system.startswith(LOCAL_SYSTEM_BASE):
            return escape(unquote(system[len(LOCAL_SYSTEM_BASE):]))
        for name, known in _pairs("identifier-systems").items():
            if known == system:
                return escape(name)
        namespace = escape(assigner)
        if system.startswith("urn:oid:"):
            return subcomponents(namespace, escape(system[8:]), "ISO")
        if system.startswith("urn:uuid:"):
            return subcomponents(namespace, escape(system[9:]), "UUID")
        return subcomponents(namespace, escape(system), "URI")


@cache
def _pairs(name: str) -> dict[str, str]:
    """A two-column table of `hl7v2/tables` (v2 name, FHIR URI), in file order."""
    text = (resources.files("ficus.hl7v2") / "tables" / f"{name}.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))[1:]
    return {row[0].strip().upper(): row[1].strip() for row in rows if len(row) >= 2 and row[0].strip()}


# -- datatypes ------------------------------------------------------------------------------


def cwe(vocabulary: ReverseVocabulary, concept: dict | None, table: str | None = None) -> str:
    """CodeableConcept or Coding -> CWE: the first coding (translated through `table` when it
    has a v2 code there), a second coding as the alternate, the text when nothing is coded."""
    if not concept:
        return ""
    codings = concept.get("coding") if "coding" in concept or "text" in concept else [concept]
    codings = [c for c in codings or [] if c.get("code")]
    text = concept.get("text")
    if not codings:
        return components("", escape(text)) if text else ""
    parts: list[str] = []
    for coding in codings[:2]:
        code = coding["code"]
        name = vocabulary.coding_system(coding.get("system"))
        if table:
            translated = vocabulary.v2_code(table, coding.get("system"), code)
            if translated:
                code, name = translated, ""
        parts += [escape(code), escape(coding.get("display") or (text if not parts else "")), escape(name)]
    return components(*parts)


def code_of(vocabulary: ReverseVocabulary, concept: dict | None, table: str) -> str:
    """The v2 code of `table` for a CodeableConcept/Coding (its first coding that maps), else
    the code of a coding from that v2 table itself."""
    if not concept:
        return ""
    codings = concept.get("coding") if "coding" in concept else [concept]
    for coding in codings or []:
        translated = vocabulary.v2_code(table, coding.get("system"), coding.get("code"))
        if translated:
            return escape(translated)
    for coding in codings or []:
        if (coding.get("system") or "").startswith(V2_TABLE_SYSTEM) and coding.get("code"):
            return escape(coding["code"])
    return ""


def cx(vocabulary: ReverseVocabulary, identifier: dict) -> str:
    """Identifier -> CX (id^^^assigning authority^identifier type code)."""
    value = identifier.get("value")
    if not value:
        return ""
    authority = vocabulary.assigning_authority(identifier.get("system"), (identifier.get("assigner") or {}).get("display"))
    type_code = code_of(vocabulary, identifier.get("type"), "IdentifierType")
    period = identifier.get("period") or {}
    return components(escape(value), "", "", authority, type_code, "", dtm(period.get("start")), dtm(period.get("end")))


def ei(vocabulary: ReverseVocabulary, identifier: dict | None) -> str:
    """Identifier -> EI (entity id^namespace^universal id^universal id type)."""
    if not identifier or not identifier.get("value"):
        return ""
    hd = vocabulary.assigning_authority(identifier.get("system"))
    return components(escape(identifier["value"]), *hd.split(SUBCOMPONENT))


def xpn(vocabulary: ReverseVocabulary, name: dict) -> str:
    """HumanName -> XPN (family^given^further given names^suffix^prefix^^name type)."""
    given = name.get("given") or []
    family = name.get("family") or ("" if given else name.get("text"))
    return components(
        escape(family), escape(given[0] if given else ""), escape(" ".join(given[1:])),
        escape(" ".join(name.get("suffix") or [])), escape(" ".join(name.get("prefix") or [])), "",
        escape(vocabulary.v2_code("NameType", "http://hl7.org/fhir/name-use", name.get("use"))),
    )


def xad(vocabulary: ReverseVocabulary, address: dict) -> str:
    """Address -> XAD (street^other designation^city^state^zip^country^address type)."""
    lines = address.get("line") or []
    kind = vocabulary.v2_code("AddressType[Use]", "http://hl7.org/fhir/address-use", address.get("use"))
    return components(
        escape(lines[0] if lines else ""), escape(", ".join(lines[1:])), escape(address.get("city")),
        escape(address.get("state")), escape(address.get("postalCode")), escape(address.get("country")), escape(kind),
    )


def xtn(vocabulary: ReverseVocabulary, telecom: dict) -> str:
    """ContactPoint -> XTN (number^use code^equipment type^email), per the IG's tables."""
    value = telecom.get("value")
    if not value:
        return ""
    system = telecom.get("system")
    use = vocabulary.v2_code("TelecommunicationUseCode", "http://hl7.org/fhir/contact-point-use", telecom.get("use"))
    equipment = vocabulary.v2_code("TelecommunicationEquipmentType", "http://hl7.org/fhir/contact-point-system", system)
    if system == "email":
        return components("", "NET", escape(equipment), escape(value))
    return components(escape(value), escape(use), escape(equipment))


def reference_id(reference: dict | None, res_type: str) -> str | None:
    """The id in a reference to `res_type` (relative or absolute), else None."""
    text = (reference or {}).get("reference") or ""
    parts = text.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == res_type and parts[-1]:
        return parts[-1]
    return None
