"""ICD-10-CM from the CDC's tabular XML (`icd10cm-tabular-<year>.xml`, plain or gzipped).

Chapters (coded by their range, e.g. `A00-B99`) and sections (`A00-A09`) become abstract
concepts above the categories, so `is-a` works from any level. Codes that take a 7th character
(`sevenChrDef`, inherited by sub-codes) are expanded the way CMS publishes them: the leaf code,
padded with the placeholder `X` to six characters, plus each 7th character (`S00.01XA`,
display "…, initial encounter"). A code is billable when nothing is below it. Notes become
string properties: inclusionTerm, includes, excludes1, excludes2, codeFirst, useAdditionalCode,
codeAlso.
"""

from __future__ import annotations

import gzip
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ficus.store.database import Database
from ficus.terminology.loaders.writer import BulkWriter, Progress, Release

URL = "http://hl7.org/fhir/sid/icd-10-cm"
NOTES = ("inclusionTerm", "includes", "excludes1", "excludes2", "codeFirst", "useAdditionalCode", "codeAlso")
PROPERTIES = [
    {"code": "billable", "uri": "http://ficus.dev/icd-10-cm#billable", "type": "boolean",
     "description": "The code is valid for claims (nothing is coded below it)"},
    {"code": "notSelectable", "uri": "http://hl7.org/fhir/concept-properties#notSelectable", "type": "boolean"},
    *({"code": note, "uri": f"http://ficus.dev/icd-10-cm#{note}", "type": "string"} for note in NOTES),
]
_RANGE = re.compile(r"\(([A-Z][0-9][0-9A-Z]-[A-Z][0-9][0-9A-Z])\)\s*$")


@dataclass
class Code:
    code: str
    display: str
    parent: str | None
    abstract: bool = False
    notes: list[tuple[str, str]] = field(default_factory=list)
    children: int = 0


def read(path: Path) -> tuple[str, list[Code]]:
    """The release year and every concept, parents before children."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        root = ET.parse(handle).getroot()
    version = (root.findtext("version") or "").strip() or "unknown"
    codes: dict[str, Code] = {}
    for chapter in root.iter("chapter"):
        description = (chapter.findtext("desc") or "").strip()
        match = _RANGE.search(description)
        chapter_code = match.group(1) if match else f"chapter-{(chapter.findtext('name') or '').strip()}"
        found = [Code(chapter_code, _RANGE.sub("", description).strip(), None, abstract=True, notes=_notes(chapter))]
        for section in chapter.iter("section"):
            section_code = section.get("id") or ""
            found.append(Code(section_code, (section.findtext("desc") or "").strip(), chapter_code, abstract=True, notes=_notes(section)))
            for diag in section.findall("diag"):
                found.extend(_diag(diag, section_code, None))
        for item in found:
            codes.setdefault(item.code, item)
    return version, list(codes.values())


def _diag(diag: ET.Element, parent: str, inherited: list[tuple[str, str]] | None) -> Iterator[Code]:
    name = (diag.findtext("name") or "").strip()
    display = (diag.findtext("desc") or "").strip()
    seventh = _seventh(diag) or inherited
    node = Code(name, display, parent, notes=_notes(diag))
    yield node
    children = diag.findall("diag")
    node.children = len(children)
    for child in children:
        yield from _diag(child, name, seventh)
    if seventh and not children:
        base = name.replace(".", "")
        padded = (base + "XXXXXX")[:6]
        allowed = [(c, m) for c, m in seventh if _allowed(padded, c)]
        node.children = len(allowed)
        for char, meaning in allowed:
            full = padded + char
            yield Code(f"{full[:3]}.{full[3:]}", f"{display}, {meaning}", name)


def _allowed(base: str, char: str) -> bool:
    """CMS publishes S06 injuries "with death" (6th character 7 or 8) for the initial encounter
    only; the tabular says so in prose, not in `sevenChrDef`."""
    return not (base.startswith("S06") and base[5] in "78" and char != "A")


def _seventh(diag: ET.Element) -> list[tuple[str, str]] | None:
    definition = diag.find("sevenChrDef")
    if definition is None:
        return None
    return [(e.get("char") or "", (e.text or "").strip()) for e in definition.findall("extension")]


def _notes(element: ET.Element) -> list[tuple[str, str]]:
    found = []
    for kind in NOTES:
        for block in element.findall(kind):
            found.extend((kind, (note.text or "").strip()) for note in block.findall("note") if note.text)
    return found


def load(database: Database, path: Path, progress: Progress, version: str | None = None) -> Release:
    progress.phase("reading ICD-10-CM XML", None)
    year, codes = read(path)
    release = Release(
        url=URL, version=version or year, name="ICD10CM", title="International Classification of Diseases, 10th Revision, Clinical Modification",
        meta={"publisher": "CDC/NCHS", "caseSensitive": False, "hierarchyMeaning": "is-a", "property": PROPERTIES},
    )
    progress.phase("writing concepts", len(codes))
    with BulkWriter(database, release, progress) as writer:
        for item in codes:
            writer.concept(item.code, item.display, abstract=item.abstract)
            if item.parent:
                writer.parent(item.code, item.parent)
            if not item.abstract:
                writer.property(item.code, "billable", "boolean", item.children == 0)
            else:
                writer.property(item.code, "notSelectable", "boolean", True)
            for kind, text in item.notes:
                writer.property(item.code, kind, "string", text)
            progress.advance()
    return release
