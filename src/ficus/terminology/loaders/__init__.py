"""Loaders for the releases terminology publishers distribute: each reads the files users
download and writes one code system version into the database with `writer.BulkWriter`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ficus.store.database import Database
from ficus.terminology.loaders import icd10cm, loinc, rxnorm, snomed
from ficus.terminology.loaders.writer import Progress, Release

Loader = Callable[[Database, Path, Progress, "str | None"], Release]

LOADERS: dict[str, Loader] = {
    "loinc": loinc.load,
    "snomed": snomed.load,
    "rxnorm": rxnorm.load,
    "icd10cm": icd10cm.load,
}
