"""Stored ConceptMaps as the HL7 v2 bridge's translations of local codes.

`StoredConceptMaps.translations(source_system)` answers from the current ConceptMaps whose group
source is `source_system` (e.g. `urn:ficus:hl7v2:LAB1:L`). What it read is kept per source system
and checked against one small query on the ConceptMap head rows (the bridge asks once per
message), so an accepted mapping is used by the very next message, in this process or any other.
"""

from __future__ import annotations

import threading

from ficus import fhirjson
from ficus.search import search_versions
from ficus.store.repository import Repository
from ficus.terminology.conceptmaps import UNMATCHED

Coding = dict[str, str]
_MAPS_PER_SYSTEM = 100


class StoredConceptMaps:
    """Local code -> standard codings, from the ConceptMaps stored in one repository."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self._cache: dict[str, tuple[tuple, dict[str, list[Coding]]]] = {}
        self._lock = threading.Lock()

    def translations(self, source_system: str) -> dict[str, list[Coding]]:
        with self.repository.reading() as tx:
            stamp = tuple(tx.execute(
                "SELECT COUNT(*), MAX(last_updated) FROM resource WHERE res_type = ?", ("ConceptMap",)
            ).fetchone())
            with self._lock:
                cached = self._cache.get(source_system)
            if cached is None or cached[0] != stamp:
                versions, _ = search_versions(
                    tx, self.repository.definitions, "ConceptMap", [("source-system", source_system)], _MAPS_PER_SYSTEM, 0
                )
                cached = (stamp, _translations(source_system, [fhirjson.decode(v.content) for v in versions if v.content]))
                with self._lock:
                    self._cache[source_system] = cached
        return cached[1]


def _translations(source_system: str, concept_maps: list[dict]) -> dict[str, list[Coding]]:
    """Every element of the groups from `source_system`, in the maps' order (active maps
    before draft ones; retired maps are left out)."""
    found: dict[str, list[Coding]] = {}
    ordered = sorted((m for m in concept_maps if m.get("status") != "retired"), key=lambda m: m.get("status") != "active")
    for concept_map in ordered:
        for group in concept_map.get("group", []):
            if group.get("source") != source_system or not group.get("target"):
                continue
            for element in group.get("element", []):
                for target in element.get("target", []):
                    if not target.get("code") or target.get("equivalence") in UNMATCHED:
                        continue
                    coding = {"system": group["target"], "code": target["code"]}
                    if target.get("display"):
                        coding["display"] = target["display"]
                    known = found.setdefault(element.get("code", ""), [])
                    if coding not in known:
                        known.append(coding)
    return found
