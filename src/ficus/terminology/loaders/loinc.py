"""LOINC from the Regenstrief CSV release (the folder that holds `LoincTable/Loinc.csv`).

Concepts: every LOINC term (display: LONG_COMMON_NAME; status ACTIVE, TRIAL, DISCOURAGED or
DEPRECATED, the last one inactive), every Part (`LP…`, from `PartFile/Part.csv`) and every
answer list and answer (`LL…`, `LA…`). Properties follow the HL7 LOINC code system: the six
axes and the other primary parts as Codings to their Part (`PartFile/LoincPartLink_Primary.csv`),
plus CLASS, CLASSTYPE, ORDER_OBS, STATUS, EXAMPLE_UCUM_UNITS, ... as strings and
`answer-list`. Designations: SHORTNAME, CONSUMER_NAME, RELATEDNAMES2 and the linguistic variants
(with their language). The component hierarchy (`ComponentHierarchyBySystem.csv`) gives is-a.
Optional files that are missing are skipped.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ficus.store.database import Database
from ficus.terminology.loaders.writer import BulkWriter, Progress, Release

URL = "http://loinc.org"
PROPERTY_URI = "http://loinc.org/property/"
STRING_PROPERTIES = (
    "CLASS", "CLASSTYPE", "ORDER_OBS", "STATUS", "EXAMPLE_UCUM_UNITS", "EXAMPLE_UNITS", "UNITSREQUIRED", "PanelType",
    "VersionFirstReleased", "VersionLastChanged", "COMMON_TEST_RANK", "COMMON_ORDER_RANK",
)
AXES = ("COMPONENT", "PROPERTY", "TIME_ASPCT", "SYSTEM", "SCALE_TYP", "METHOD_TYP")
DESIGNATION_USE = "http://loinc.org"


def _rows(path: Path) -> Iterator[dict[str, str]]:
    if not path.exists():
        return
    with path.open(newline="", encoding="utf-8-sig") as handle:
        yield from csv.DictReader(handle)


def _find(root: Path, *names: str) -> Path:
    """The file at the first of `names` (relative paths) that exists under `root`."""
    for name in names:
        candidate = root / name
        if candidate.exists():
            return candidate
    matches = sorted(root.rglob(Path(names[0]).name))
    return matches[0] if matches else root / names[0]


def load(database: Database, path: Path, progress: Progress, version: str | None = None) -> Release:
    root = path if path.is_dir() else path.parent
    table = _find(root, "LoincTable/Loinc.csv", "Loinc.csv")
    if not table.exists():
        raise FileNotFoundError(f"No LoincTable/Loinc.csv under {root}")
    terms = list(_rows(table))
    parts = list(_rows(_find(root, "AccessoryFiles/PartFile/Part.csv")))
    links = list(_rows(_find(root, "AccessoryFiles/PartFile/LoincPartLink_Primary.csv")))
    release_version = version or max((t.get("VersionLastChanged", "") for t in terms), key=_version_key, default="unknown")
    properties = [{"code": p, "uri": PROPERTY_URI + p, "type": "string"} for p in STRING_PROPERTIES]
    properties += [{"code": p, "uri": PROPERTY_URI + p, "type": "Coding"} for p in sorted({_property(link) for link in links} | set(AXES))]
    properties += [
        {"code": "parent", "uri": "http://hl7.org/fhir/concept-properties#parent", "type": "code"},
        {"code": "child", "uri": "http://hl7.org/fhir/concept-properties#child", "type": "code"},
        {"code": "answer-list", "uri": PROPERTY_URI + "answer-list", "type": "Coding"},
    ]
    release = Release(
        url=URL, version=release_version, name="LOINC", title="Logical Observation Identifiers, Names and Codes (LOINC)",
        meta={
            "publisher": "Regenstrief Institute, Inc.", "caseSensitive": False, "hierarchyMeaning": "is-a", "property": properties,
            "copyright": "This material contains content from LOINC (http://loinc.org). LOINC is copyright © Regenstrief "
                         "Institute, Inc. and the Logical Observation Identifiers Names and Codes (LOINC) Committee and is "
                         "available at no cost under the license at http://loinc.org/license.",
        },
    )
    progress.phase("writing LOINC terms", len(terms) + len(parts))
    with BulkWriter(database, release, progress) as writer:
        known: set[str] = set()
        for term in terms:
            code = term["LOINC_NUM"]
            status = term.get("STATUS", "ACTIVE").upper()
            writer.concept(code, term.get("LONG_COMMON_NAME") or term.get("COMPONENT"), term.get("DefinitionDescription") or None,
                           status.lower(), inactive=status == "DEPRECATED")
            known.add(code)
            for name in STRING_PROPERTIES:
                writer.property(code, name, "string", term.get(name))
            for field, use in (("SHORTNAME", "SHORTNAME"), ("CONSUMER_NAME", "CONSUMER_NAME")):
                if term.get(field):
                    writer.designation(code, term[field], "en-US", {"system": DESIGNATION_USE, "code": use})
            for related in filter(None, (n.strip() for n in (term.get("RELATEDNAMES2") or "").split(";"))):
                writer.designation(code, related, "en-US", {"system": DESIGNATION_USE, "code": "RELATEDNAMES2"})
            progress.advance()
        for part in parts:
            code = part["PartNumber"]
            if code in known:
                continue
            known.add(code)
            status = (part.get("Status") or "ACTIVE").upper()
            writer.concept(code, part.get("PartDisplayName") or part.get("PartName"), None, status.lower(), inactive=status == "DEPRECATED")
            writer.property(code, "PartTypeName", "string", part.get("PartTypeName"))
            progress.advance()
        for link in links:
            writer.property(link["LoincNumber"], _property(link), "Coding",
                            {"system": URL, "code": link["PartNumber"], "display": link["PartName"]})
        _consumer_names(writer, root)
        _variants(writer, root)
        _answers(writer, root, known)
        _hierarchy(writer, root, known)
    return release


def _consumer_names(writer: BulkWriter, root: Path) -> None:
    for row in _rows(_find(root, "AccessoryFiles/ConsumerName/ConsumerName.csv")):
        if row.get("ConsumerName"):
            writer.designation(row["LoincNumber"], row["ConsumerName"], "en-US", {"system": DESIGNATION_USE, "code": "CONSUMER_NAME"})


def _variants(writer: BulkWriter, root: Path) -> None:
    for variant in _rows(_find(root, "AccessoryFiles/LinguisticVariants/LinguisticVariants.csv")):
        language = f"{variant['ISO_LANGUAGE']}-{variant['ISO_COUNTRY']}"
        name = f"{variant['ISO_LANGUAGE']}{variant['ISO_COUNTRY']}{variant['ID']}LinguisticVariant.csv"
        for row in _rows(root / "AccessoryFiles" / "LinguisticVariants" / name):
            if row.get("LONG_COMMON_NAME"):
                writer.designation(row["LOINC_NUM"], row["LONG_COMMON_NAME"], language)


def _answers(writer: BulkWriter, root: Path, known: set[str]) -> None:
    answer_dir = "AccessoryFiles/AnswerFile/"
    for row in _rows(_find(root, answer_dir + "AnswerList.csv")):
        list_id, answer = row["AnswerListId"], row.get("AnswerStringId")
        if list_id not in known:
            known.add(list_id)
            writer.concept(list_id, row.get("AnswerListName"))
        if answer and answer not in known:
            known.add(answer)
            writer.concept(answer, row.get("DisplayText"))
    for row in _rows(_find(root, answer_dir + "LoincAnswerListLink.csv")):
        writer.property(row["LoincNumber"], "answer-list", "Coding", {"system": URL, "code": row["AnswerListId"], "display": row.get("AnswerListName")})


def _hierarchy(writer: BulkWriter, root: Path, known: set[str]) -> None:
    for row in _rows(_find(root, "AccessoryFiles/ComponentHierarchyBySystem/ComponentHierarchyBySystem.csv")):
        code, parent = row["CODE"], row.get("IMMEDIATE_PARENT")
        if code not in known:
            known.add(code)
            writer.concept(code, row.get("CODE_TEXT"), abstract=code.startswith("LP"))
        if parent:
            writer.parent(code, parent)


def _property(link: dict[str, str]) -> str:
    """The LOINC property a part link fills (`http://loinc.org/property/SCALE_TYP` -> SCALE_TYP)."""
    return (link.get("Property") or "").rsplit("/", 1)[-1] or link["PartTypeName"]


def _version_key(value: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in value.split(".")) if value else ()
