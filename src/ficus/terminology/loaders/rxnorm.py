"""RxNorm from the NLM RRF release (the `rrf` folder: RXNCONSO, RXNREL, RXNSAT).

Concepts are the RXCUIs of the RXNORM source. The display is the RXNORM string of the
concept's main term type (SCD, SBD, IN, ... before synonyms), the other strings become
designations; TTY is a property. RXNREL relationships within RXNORM become code properties
named by RELA on the second concept (RRF reads "RXCUI2 RELA RXCUI1"), `isa` ones the
hierarchy. RXNSAT attributes of RXNORM (e.g. NDC) become string properties. Concepts whose
strings are all suppressed load as inactive. The version is given, or read from the folder name
(`RxNorm_full_MMDDYYYY`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ficus.store.database import Database
from ficus.terminology.loaders.writer import BulkWriter, Progress, Release

URL = "http://www.nlm.nih.gov/research/umls/rxnorm"
_MAIN_TYPES = ("SCD", "SBD", "GPCK", "BPCK", "SCDG", "SBDG", "SCDF", "SBDF", "SCDC", "SBDC", "IN", "PIN", "MIN", "BN", "DF", "DFG")
CONSO = ("RXCUI", "LAT", "TS", "LUI", "STT", "SUI", "ISPREF", "RXAUI", "SAUI", "SCUI", "SDUI", "SAB", "TTY", "CODE", "STR", "SRL", "SUPPRESS", "CVF")
REL = ("RXCUI1", "RXAUI1", "STYPE1", "REL", "RXCUI2", "RXAUI2", "STYPE2", "RELA", "RUI", "SRUI", "SAB", "SL", "DIR", "RG", "SUPPRESS", "CVF")
SAT = ("RXCUI", "LUI", "SUI", "RXAUI", "STYPE", "CODE", "ATUI", "SATUI", "ATN", "SAB", "ATV", "SUPPRESS", "CVF")


def _rows(folder: Path, name: str, columns: tuple[str, ...]) -> Iterator[dict[str, str]]:
    matches = sorted(folder.rglob(name))
    if not matches:
        return
    with matches[0].open(encoding="utf-8") as handle:
        for line in handle:
            yield dict(zip(columns, line.rstrip("\n").split("|")))


def load(database: Database, path: Path, progress: Progress, version: str | None = None) -> Release:
    folder = path if path.is_dir() else path.parent
    progress.phase("reading RXNCONSO", None)
    strings: dict[str, list[dict[str, str]]] = {}
    for row in _rows(folder, "RXNCONSO.RRF", CONSO):
        if row.get("SAB") == "RXNORM":
            strings.setdefault(row["RXCUI"], []).append(row)
    if not strings:
        raise FileNotFoundError(f"No RXNCONSO.RRF with RXNORM rows under {folder}")
    found = re.search(r"(\d{8})", str(folder.resolve()))
    release = Release(
        url=URL, version=version or (found.group(1) if found else "unknown"), name="RxNorm", title="RxNorm",
        meta={
            "publisher": "National Library of Medicine", "caseSensitive": False, "hierarchyMeaning": "is-a",
            "property": [{"code": "TTY", "uri": URL + "/property/TTY", "type": "code"}],
        },
    )
    progress.phase("writing RxNorm concepts", len(strings))
    with BulkWriter(database, release, progress) as writer:
        for cui, rows in strings.items():
            ranked = sorted(rows, key=lambda r: _MAIN_TYPES.index(r["TTY"]) if r["TTY"] in _MAIN_TYPES else len(_MAIN_TYPES))
            main = ranked[0]
            writer.concept(cui, main["STR"], inactive=all(r.get("SUPPRESS") in ("O", "Y", "E") for r in rows))
            for tty in dict.fromkeys(r["TTY"] for r in rows):
                writer.property(cui, "TTY", "code", tty)
            for row in ranked[1:]:
                writer.designation(cui, row["STR"], "en", {"system": URL, "code": row["TTY"]})
            progress.advance()
        progress.phase("writing relationships", None)
        for row in _rows(folder, "RXNREL.RRF", REL):
            if row.get("SAB") != "RXNORM" or row["RXCUI1"] not in strings or row["RXCUI2"] not in strings:
                continue
            if row.get("RELA") == "isa":
                writer.parent(row["RXCUI2"], row["RXCUI1"])
            elif row.get("RELA"):
                writer.property(row["RXCUI2"], row["RELA"], "code", row["RXCUI1"])
        for row in _rows(folder, "RXNSAT.RRF", SAT):
            if row.get("SAB") == "RXNORM" and row["RXCUI"] in strings and row.get("ATN"):
                writer.property(row["RXCUI"], row["ATN"], "string", row.get("ATV"))
    return release
