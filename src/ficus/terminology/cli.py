"""`ficus terminology ...`: load publishers' releases into the database of FICUS_DATABASE_URL.

    ficus terminology load loinc  ~/Downloads/Loinc_2.78
    ficus terminology load icd10cm icd10cm-tabular-April-1-2026.xml.gz
    ficus terminology load snomed SnomedCT_InternationalRF2_PRODUCTION_20240701T120000Z/Snapshot
    ficus terminology load rxnorm RxNorm_full_01062025/rrf
    ficus terminology list
    ficus terminology map suggest|accept|evaluate ...   (the mapping assistant: ficus.terminology.mapping.cli)
"""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from ficus.terminology.mapping.cli import map_app

terminology_app = typer.Typer(help="Terminology content: load LOINC, SNOMED CT, RxNorm, ICD-10-CM.", no_args_is_help=True)
terminology_app.add_typer(map_app, name="map")


class Kind(str, Enum):
    loinc = "loinc"
    snomed = "snomed"
    rxnorm = "rxnorm"
    icd10cm = "icd10cm"


class RichProgress:
    """Loader progress on a rich progress bar: one task per phase."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: int | None = None

    def phase(self, name: str, total: int | None = None) -> None:
        if self.task is not None:
            task = self.progress.tasks[self.task]
            self.progress.update(self.task, total=task.completed or 1, completed=task.completed or 1)
        self.task = self.progress.add_task(name, total=total)

    def advance(self, amount: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, amount)

    def close(self) -> None:
        self.phase("done", 1)
        self.advance()


@terminology_app.command()
def load(
    kind: Kind = typer.Argument(..., help="What the files are."),
    path: Path = typer.Argument(..., exists=True, help="The release folder (or file, for ICD-10-CM)."),
    version: str = typer.Option(None, help="The version to record (default: read from the release)."),
) -> None:
    """Load a release. The new version becomes visible only when it is complete; a failed load
    leaves the previous one in place."""
    from ficus.config import Settings
    from ficus.store.database import open_database
    from ficus.terminology.loaders import LOADERS

    settings = Settings.from_environment()
    database = open_database(settings.database_url)
    console = Console(stderr=True)
    started = time.perf_counter()
    try:
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            reporter = RichProgress(progress)
            release = LOADERS[kind.value](database, path, reporter, version)
            reporter.close()
    finally:
        database.close()
    typer.echo(f"Loaded {release.title} {release.version} ({release.url}) in {time.perf_counter() - started:.1f} s")


@terminology_app.command("list")
def list_loaded() -> None:
    """The loaded code systems and their versions."""
    from ficus.config import Settings
    from ficus.store.database import open_database

    database = open_database(Settings.from_environment().database_url)
    try:
        with database.session() as tx:
            rows = tx.execute("SELECT url, version, state, concepts FROM tx_code_system ORDER BY url, version").fetchall()
    finally:
        database.close()
    for url, version, state, concepts in rows:
        typer.echo(f"{url}\t{version}\t{state}\t{concepts} concepts")
