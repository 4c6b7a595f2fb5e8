"""Code translation: the v2-to-FHIR IG concept maps and the v2 coding-system names, from CSV.

The concept maps are the IG's own sheets (`tables/<Name>.csv`, v2 code in column 1, FHIR code,
display and system on the right). A directory of local tables with the same names can be laid
over them, per sending facility, to translate a site's own codes (`Vocabulary.overlaid`).
Codes a sender sends in a local coding system can also be translated by stored FHIR
ConceptMaps whose source is `local_code_system(facility, coding system)` (`LocalCodeMaps`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

Coding = dict[str, str]
_TABLES = resources.files("ficus.hl7v2") / "tables"
LOCAL_CODE_SYSTEM_BASE = "urn:ficus:hl7v2:"


def local_code_system(facility: str, coding_system: str) -> str:
    """The code system URI of codes a sending facility sends in a local coding system (CWE-3
    such as `L`, `99LAB`, or empty): `urn:ficus:hl7v2:<facility>:<coding system or L>`, the
    source of the ConceptMaps that translate them."""
    return f"{LOCAL_CODE_SYSTEM_BASE}{quote(facility or 'unknown', safe='')}:{quote(coding_system.strip() or 'L', safe='')}"


class LocalCodeMaps(Protocol):
    """Translations of local codes, e.g. from the ConceptMaps stored in the server: for one
    source system, each local code's standard codings."""

    def translations(self, source_system: str) -> Mapping[str, list[Coding]]: ...


class _PerMessage:
    """A message's view of the local maps: each source system is asked once per message."""

    def __init__(self, maps: LocalCodeMaps) -> None:
        self.maps = maps
        self.seen: dict[str, Mapping[str, list[Coding]]] = {}

    def translations(self, source_system: str) -> Mapping[str, list[Coding]]:
        if source_system not in self.seen:
            self.seen[source_system] = self.maps.translations(source_system)
        return self.seen[source_system]


class ConceptMap:
    """One IG concept map: v2 code -> FHIR coding (code, display, system)."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.codes: dict[str, Coding] = {}
        rows = list(csv.reader(io.StringIO(text)))
        if len(rows) < 2:
            return
        columns = _Columns(rows[1])
        for row in rows[2:]:
            source, coding = columns.read(row)
            if source and coding and source not in self.codes:
                self.codes[source] = coding

    def get(self, code: str) -> Coding | None:
        return self.codes.get(code) or self.codes.get(code.upper())


class _Columns:
    """Where the FHIR code, display and system are in a sheet (the IG's sheets vary slightly)."""

    def __init__(self, header: list[str]) -> None:
        names = [name.strip().lower() for name in header]
        self.code = names.index("code", 1)
        self.display = names.index("display") if "display" in names else None
        self.system = len(names) - 1 - names[::-1].index("code system")

    def read(self, row: list[str]) -> tuple[str, Coding | None]:
        cell = [value.strip() for value in row] + [""] * 12
        source, code, system = cell[0], cell[self.code], cell[self.system]
        if not code or not system.startswith(("http", "urn")):
            return source, None
        display = cell[self.display] if self.display is not None else ""
        display = display or cell[self.code + 1]
        coding = {"system": system, "code": code}
        if display:
            coding["display"] = display
        return source, coding


class Vocabulary:
    """All concept maps and coding-system names, read once, optionally overlaid by local tables."""

    def __init__(self, overlay: Path | None = None, local_maps: LocalCodeMaps | None = None) -> None:
        self._overlay = overlay
        self.local_maps = local_maps
        self._maps: dict[str, ConceptMap] = {}
        self._lookups: dict[str, dict[str, str]] = {}

    def overlaid(self, directory: Path | None) -> Vocabulary:
        """This vocabulary with the tables in `directory` taking precedence (None: unchanged)."""
        if directory is None or not directory.is_dir():
            return self
        return Vocabulary(directory, self.local_maps)

    def concept_map(self, name: str) -> ConceptMap:
        found = self._maps.get(name)
        if found is None:
            found = ConceptMap(name, _read_table(name))
            if self._overlay is not None and (self._overlay / f"{name}.csv").is_file():
                local = ConceptMap(name, (self._overlay / f"{name}.csv").read_text(encoding="utf-8"))
                found.codes = {**found.codes, **local.codes}
            self._maps[name] = found
        return found

    def translate(self, table: str, code: str) -> Coding | None:
        """The FHIR coding the IG concept map `table` gives for the v2 `code`."""
        return self.concept_map(table).get(code) if code else None

    def local_translations(self, facility: str, coding_system: str, code: str) -> list[Coding]:
        """Standard codings that stored ConceptMaps give for a code the facility sent in a local
        coding system (none when the coding system is a known one)."""
        if self.local_maps is None or not code or self.system_uri(coding_system):
            return []
        found = self.local_maps.translations(local_code_system(facility, coding_system)).get(code, [])
        return [dict(coding) for coding in found]

    def for_message(self) -> Vocabulary:
        """This vocabulary for mapping one message: the local maps are read once for it."""
        if self.local_maps is None:
            return self
        found = Vocabulary(self._overlay, _PerMessage(self.local_maps))
        found._maps, found._lookups = self._maps, self._lookups
        return found

    def code(self, table: str, code: str) -> str | None:
        coding = self.translate(table, code)
        return coding["code"] if coding else None

    def _pairs(self, name: str) -> dict[str, str]:
        """A two-column table (v2 name -> URI), keys upper-cased."""
        found = self._lookups.get(name)
        if found is None:
            rows = csv.reader(io.StringIO(_read_table(name)))
            next(rows, None)
            found = {row[0].strip().upper(): row[1].strip() for row in rows if len(row) >= 2 and row[0].strip()}
            self._lookups[name] = found
        return found

    def system_uri(self, name: str) -> str | None:
        """The FHIR system URI for a v2 coding-system name (HL7 table 0396), e.g. LN -> LOINC."""
        name = name.strip()
        if not name:
            return None
        if name.startswith(("http://", "https://", "urn:")):
            return name
        upper = name.upper()
        if upper.startswith("HL7") and upper[3:].isdigit() and len(upper) == 7:
            return f"http://terminology.hl7.org/CodeSystem/v2-{upper[3:]}"
        return self._pairs("coding-systems").get(upper)

    def identifier_system(self, namespace: str) -> str | None:
        """The FHIR identifier system of a well-known v2 assigning authority (e.g. USSSA)."""
        return self._pairs("identifier-systems").get(namespace.strip().upper())


def _read_table(name: str) -> str:
    resource = _TABLES / f"{name}.csv"
    return resource.read_text(encoding="utf-8") if resource.is_file() else ""
