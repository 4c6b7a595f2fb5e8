"""SNOMED CT from an RF2 release (the `Snapshot` folder, or any folder holding its files).

Reads the concept, description and relationship snapshot files (`sct2_Concept_Snapshot*`,
`sct2_Description_Snapshot*`, `sct2_Relationship_Snapshot*`) and, when present, the language
reference set (`der2_cRefset_Language*Snapshot*`) to pick preferred terms. Active is-a
relationships (116680003) form the hierarchy (its closure is what makes `is-a` fast); other
active relationships become properties named by their type id. Inactive concepts load as
inactive. The version is the release's latest effectiveTime unless one is given.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ficus.store.database import Database
from ficus.terminology.loaders.writer import BulkWriter, Progress, Release

URL = "http://snomed.info/sct"
IS_A = "116680003"
FSN = "900000000000003001"
SYNONYM = "900000000000013009"
PREFERRED = "900000000000548007"
DEFINED = "900000000000073002"


def _rows(folder: Path, pattern: str) -> Iterator[dict[str, str]]:
    for path in sorted(folder.rglob(pattern)):
        with path.open(newline="", encoding="utf-8") as handle:
            yield from csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)


def load(database: Database, path: Path, progress: Progress, version: str | None = None) -> Release:
    folder = path if path.is_dir() else path.parent
    progress.phase("reading RF2 concepts", None)
    concepts = {row["id"]: row for row in _rows(folder, "sct2_Concept_Snapshot*.txt")}
    if not concepts:
        raise FileNotFoundError(f"No sct2_Concept_Snapshot file under {folder}")
    preferred = {row["referencedComponentId"] for row in _rows(folder, "der2_cRefset_Language*Snapshot*.txt")
                 if row.get("active") == "1" and row.get("acceptabilityId") == PREFERRED}
    descriptions: dict[str, list[dict[str, str]]] = {}
    for row in _rows(folder, "sct2_Description_Snapshot*.txt"):
        if row.get("active") == "1":
            descriptions.setdefault(row["conceptId"], []).append(row)
    latest = max((row["effectiveTime"] for row in concepts.values()), default="unknown")
    release = Release(
        url=URL, version=version or latest, name="SNOMED_CT", title="SNOMED CT",
        meta={
            "publisher": "SNOMED International", "caseSensitive": True, "hierarchyMeaning": "is-a",
            "property": [
                {"code": "inactive", "uri": "http://hl7.org/fhir/concept-properties#inactive", "type": "boolean"},
                {"code": "sufficientlyDefined", "uri": "http://snomed.info/field/Concept.definitionStatusId", "type": "boolean"},
                {"code": "moduleId", "uri": "http://snomed.info/field/Concept.moduleId", "type": "code"},
            ],
        },
    )
    progress.phase("writing SNOMED CT concepts", len(concepts))
    with BulkWriter(database, release, progress) as writer:
        for code, row in concepts.items():
            terms = descriptions.get(code, [])
            synonyms = [t for t in terms if t["typeId"] == SYNONYM]
            chosen = next((t for t in synonyms if t["id"] in preferred), synonyms[0] if synonyms else None)
            fsn = next((t for t in terms if t["typeId"] == FSN), None)
            display = (chosen or fsn or {}).get("term")
            writer.concept(code, display, inactive=row["active"] != "1")
            writer.property(code, "moduleId", "code", row.get("moduleId"))
            writer.property(code, "sufficientlyDefined", "boolean", row.get("definitionStatusId") == DEFINED)
            for term in terms:
                use = {"system": URL, "code": term["typeId"], "display": "Fully specified name" if term["typeId"] == FSN else "Synonym"}
                writer.designation(code, term["term"], term.get("languageCode"), use)
            progress.advance()
        progress.phase("writing relationships", None)
        for row in _rows(folder, "sct2_Relationship_Snapshot*.txt"):
            if row.get("active") != "1":
                continue
            if row["typeId"] == IS_A:
                writer.parent(row["sourceId"], row["destinationId"])
            else:
                writer.property(row["sourceId"], row["typeId"], "code", row["destinationId"])
            progress.advance()
    return release
