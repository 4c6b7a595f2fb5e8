"""`ficus terminology map ...`: the mapping assistant on the command line.

    ficus terminology map suggest lab-codes.csv --target loinc --source-system http://lab.example.org/codes -o review.csv
    ficus terminology map suggest --from-messages --facility LAB1 --target loinc -o review.csv
    ficus terminology map accept review.csv            # after marking rows in its accept column
    ficus terminology map evaluate labelled.csv --target loinc --source-system http://lab.example.org/codes
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from ficus.api.interactions import Interactions
    from ficus.store.database import Database

map_app = typer.Typer(help="Map local codes to standard ones: suggest, review, accept.", no_args_is_help=True)

DATABASE_HELP = "Database URL (default: FICUS_DATABASE_URL)."
TARGET_HELP = "Target code system: a URI, or loinc, snomed, rxnorm, icd10cm."


def _interactions(database_url: str | None) -> tuple[Interactions, Database]:
    from ficus.api.local import local_interactions

    return local_interactions(database_url)


def _fail(error: Exception) -> typer.Exit:
    where = getattr(error, "where", None)
    typer.echo(f"Error: {error}" + (f" ({where})" if where and where not in str(error) else ""), err=True)
    return typer.Exit(1)


@map_app.command()
def suggest(
    csv_file: Path | None = typer.Argument(None, exists=True, dir_okay=False, help="CSV of local codes: code, display[, unit, system]."),
    target: str = typer.Option(..., "--target", help=TARGET_HELP),
    source_system: str | None = typer.Option(None, help="The local code system of CSV rows that name none."),
    from_resources: bool = typer.Option(False, help="Map the local codes found in stored resources."),
    from_messages: bool = typer.Option(False, help="Map the local OBX-3 codes of stored HL7 v2 messages."),
    facility: str | None = typer.Option(None, help="With --from-messages: only this sending facility."),
    count: int = typer.Option(3, min=1, max=20, help="Candidates per local code."),
    preselect: float | None = typer.Option(None, help="Mark each best candidate scoring at least this (0-1) as accepted."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the review CSV here (default: standard output)."),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Propose candidates and write them as a review CSV to mark and `accept`."""
    from ficus.terminology.mapping import sources
    from ficus.terminology.mapping.review import write_review
    from ficus.terminology.mapping.suggest import MappingAssistant, MappingError

    if sum((csv_file is not None, from_resources, from_messages)) != 1:
        raise typer.BadParameter("give exactly one of a CSV file, --from-resources, --from-messages")
    interactions, database = _interactions(database_url)
    try:
        assistant = MappingAssistant(interactions.repository)
        if csv_file is not None:
            local_concepts = sources.from_csv(csv_file.read_text(encoding="utf-8"), source_system)
        elif from_resources:
            local_concepts = sources.from_resources(database, assistant.known_systems())
        else:
            local_concepts = sources.from_messages(database, facility)
        if not local_concepts:
            typer.echo("No local codes found to map", err=True)
            raise typer.Exit(1)
        suggestions = assistant.suggest(local_concepts, target, count)
        target_url = assistant.target(target).system
    except (MappingError, sources.SourceError) as error:
        raise _fail(error) from None
    finally:
        database.close()
    text = write_review(suggestions, target_url, preselect)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
    _summary(suggestions)


def _summary(suggestions: list) -> None:
    table = Table("local code", "display", "unit", "best candidate", "score", "parts")
    for suggestion in suggestions:
        local = suggestion.local
        best = suggestion.candidates[0] if suggestion.candidates else None
        table.add_row(local.code, local.display, local.unit or "", f"{best.code} {best.display}" if best else "(none)",
                      f"{best.score:.3f}" if best else "", best.explain() if best else "")
    Console(stderr=True).print(table)


@map_app.command()
def accept(
    review_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="The review CSV with rows marked in `accept`."),
    url: str | None = typer.Option(None, help="Canonical URL of the ConceptMap (default: [base]/ConceptMap/<id>)."),
    map_id: str | None = typer.Option(None, "--id", help="Resource id of the ConceptMap (default: from the systems)."),
    name: str | None = typer.Option(None, help="ConceptMap.name of a new map."),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Store the marked rows as a ConceptMap (merged into the map at the same URL)."""
    from ficus.terminology.mapping.conceptmap import save_concept_map
    from ficus.terminology.mapping.review import read_review
    from ficus.terminology.mapping.suggest import MappingError

    interactions, database = _interactions(database_url)
    try:
        accepted = read_review(review_file.read_text(encoding="utf-8"))
        stored = save_concept_map(interactions, accepted, url, map_id, name)
    except MappingError as error:
        raise _fail(error) from None
    finally:
        database.close()
    elements = sum(len(group.get("element", [])) for group in stored.get("group", []))
    typer.echo(f"Stored ConceptMap/{stored['id']} ({stored['url']}): {len(accepted)} accepted, {elements} mapped codes in all")


@map_app.command()
def evaluate(
    labelled: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV of code, display[, unit], expected."),
    target: str = typer.Option(..., "--target", help=TARGET_HELP),
    source_system: str = typer.Option("urn:ficus:labelled-sample", help="The local system of the rows."),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Precision@1 and @3 of the suggestions on a sample labelled with the right codes."""
    from ficus.terminology.mapping.evaluate import evaluate as measure
    from ficus.terminology.mapping.suggest import MappingAssistant, MappingError

    interactions, database = _interactions(database_url)
    try:
        rows = list(csv.DictReader(io.StringIO(labelled.read_text(encoding="utf-8").lstrip("\ufeff"))))
        result = measure(MappingAssistant(interactions.repository), rows, target, source_system)
    except (MappingError, KeyError) as error:
        raise _fail(error) from None
    finally:
        database.close()
    for miss in result.misses:
        typer.echo(f"miss: {miss}", err=True)
    typer.echo(f"precision@1 {result.at_1:.3f}  precision@3 {result.at_3:.3f}  n={result.total}  "
               f"{result.ms_per_code:.1f} ms per code")
