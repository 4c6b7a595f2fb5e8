"""Where local codes come from: a CSV catalogue, the codings stored resources carry in systems
that are not known standards, and the OBX-3 codes of stored HL7 v2 messages.

Each source yields `LocalConcept`s, one per (system, code), with the display and unit seen most
often and how many times the code was seen; the stored ones come most often seen first, since
those are the codes whose mapping matters most.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ficus import fhirjson
from ficus.hl7v2.mapping.vocabulary import Vocabulary, local_code_system
from ficus.hl7v2.message import V2Message
from ficus.store.database import Database
from ficus.terminology.mapping.score import LocalConcept

CSV_COLUMNS = ("code", "display", "unit", "system")


class SourceError(ValueError):
    """Input that cannot be read as local codes; `where` names the row or field."""

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.where = where


def from_csv(text: str, default_system: str | None = None) -> list[LocalConcept]:
    """Local codes from CSV with a header row: `code`, `display`, optional `unit` and `system`
    (a row without `system` takes `default_system`)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    if "code" not in header or "display" not in header:
        raise SourceError("The CSV needs a header row with at least the columns code and display", "row 1")
    reader.fieldnames = header
    found: dict[tuple[str, str], _Seen] = {}
    for number, row in enumerate(reader, start=2):
        code = (row.get("code") or "").strip()
        display = (row.get("display") or "").strip()
        if not code and not display:
            continue
        if not code or not display:
            raise SourceError(f"Row {number} needs both a code and a display", f"row {number}")
        system = (row.get("system") or "").strip() or default_system
        if not system:
            raise SourceError(f"Row {number} has no system, and no default source system was given", f"row {number}")
        found.setdefault((system, code), _Seen(system, code)).add(display, (row.get("unit") or "").strip())
    return [seen.concept() for seen in found.values()]


@dataclass
class _Seen:
    """Tallies of one local code's displays and units as they were seen."""

    system: str
    code: str
    facility: str | None = None
    displays: Counter = field(default_factory=Counter)
    units: Counter = field(default_factory=Counter)
    count: int = 0

    def add(self, display: str, unit: str | None, times: int = 1) -> None:
        self.count += times
        if display:
            self.displays[display] += times
        if unit:
            self.units[unit] += times

    def concept(self) -> LocalConcept:
        display = _most_common(self.displays) or self.code
        return LocalConcept(self.code, display, _most_common(self.units), self.system, self.facility, self.count)


def _most_common(counter: Counter) -> str | None:
    if not counter:
        return None
    top = max(counter.values())
    return min(value for value, times in counter.items() if times == top)


def from_resources(database: Database, known_systems: set[str], resource_types: Iterable[str] = ()) -> list[LocalConcept]:
    """Codes of `code` search parameters (Observation.code, Condition.code, ...) whose system
    is not in `known_systems`, with the unit of Observations' valueQuantity: grouped from the
    token and quantity index tables, the display as written read from one resource per code."""
    types = list(resource_types)
    type_clause = f" AND t.res_type IN ({', '.join('?' * len(types))})" if types else ""
    with database.session() as tx:
        codes = tx.execute(
            "SELECT t.system, t.code, COUNT(*), MIN(t.rid) FROM idx_token t "
            f"WHERE t.param = ? AND t.system IS NOT NULL AND t.code IS NOT NULL{type_clause} GROUP BY t.system, t.code",
            ("code", *types),
        ).fetchall()
        codes = [row for row in codes if row[0] not in known_systems]
        units = tx.execute(
            "SELECT t.system, t.code, COALESCE(q.code, q.unit), COUNT(*) FROM idx_token t "
            "JOIN idx_quantity q ON q.rid = t.rid AND q.param = ? "
            f"WHERE t.param = ? AND t.system IS NOT NULL AND t.code IS NOT NULL{type_clause} "
            "GROUP BY t.system, t.code, COALESCE(q.code, q.unit)",
            ("value-quantity", "code", *types),
        ).fetchall()
        contents = _contents(tx, sorted({row[3] for row in codes}))
    found: dict[tuple[str, str], _Seen] = {}
    for system, code, times, rid in codes:
        display = _display_in(contents.get(rid), system, code)
        found.setdefault((system, code), _Seen(system, code)).add(display or "", None, times)
    for system, code, unit, times in units:
        seen = found.get((system, code))
        if seen is not None and unit:
            seen.units[unit] += times
    return by_frequency(seen.concept() for seen in found.values())


_CHUNK = 500


def _contents(tx: Any, rids: list[int]) -> dict[int, dict]:
    """The current content of the resources `rids`, decoded."""
    found: dict[int, dict] = {}
    for start in range(0, len(rids), _CHUNK):
        chunk = rids[start:start + _CHUNK]
        rows = tx.execute(
            "SELECT r.rid, v.content FROM resource r JOIN resource_version v ON v.res_type = r.res_type "
            f"AND v.res_id = r.res_id AND v.version = r.version WHERE r.rid IN ({', '.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
        found.update((rid, fhirjson.decode(content)) for rid, content in rows if content)
    return found


def _display_in(value: Any, system: str, code: str) -> str | None:
    """The display of the first coding (system, code) anywhere in a resource."""
    if isinstance(value, dict):
        if value.get("system") == system and value.get("code") == code and isinstance(value.get("display"), str):
            return value["display"]
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = _display_in(item, system, code)
            if found:
                return found
    return None


def from_messages(database: Database, facility: str | None = None, limit: int = 10_000) -> list[LocalConcept]:
    """OBX-3 codes in local coding systems (CWE-3 not a known one) of the most recent stored
    v2 messages, per sending facility, with OBX-6 units."""
    vocabulary = Vocabulary()
    found: dict[tuple[str, str], _Seen] = {}
    for raw in _recent_messages(database, limit):
        try:
            message = V2Message(raw)
        except Exception:  # noqa: BLE001 - a message the store kept as unreadable has no codes to offer
            continue
        header = message.header
        sender = header.sending_facility.split("^")[0] or header.sending_application.split("^")[0] or "unknown"
        if facility is not None and sender != facility:
            continue
        for obx in message.all("OBX"):
            identifier = obx.first(3)
            code, display, coding_system = identifier[1], identifier[2], identifier[3]
            if not code or vocabulary.system_uri(coding_system):
                continue
            system = local_code_system(sender, coding_system)
            units = obx.first(6)
            seen = found.setdefault((system, code), _Seen(system, code, sender))
            seen.add(display or identifier[9], units[1] or units[2] or None)
    return by_frequency(seen.concept() for seen in found.values())


def by_frequency(concepts: Iterable[LocalConcept]) -> list[LocalConcept]:
    return sorted(concepts, key=lambda c: (-c.count, c.system or "", c.code))


def _recent_messages(database: Database, limit: int) -> Iterator[str]:
    with database.session() as tx:
        rows = tx.execute("SELECT raw FROM hl7_message WHERE status <> ? ORDER BY id DESC LIMIT ?", ("rejected", limit)).fetchall()
    for (raw,) in rows:
        yield raw
