"""The `ficus` command."""

from __future__ import annotations

import os

import typer

from ficus.auth.cli import auth_app
from ficus.hl7v2.cli import hl7_app
from ficus.terminology.cli import terminology_app

app = typer.Typer(help="Ficus: an HL7 FHIR R4 server.", no_args_is_help=True, add_completion=False)
app.add_typer(hl7_app, name="hl7", help="The HL7 v2 bridge: MLLP listener, conversion, message store.")
app.add_typer(auth_app, name="auth", help="SMART on FHIR authorization: clients, users, signing keys, EHR launches.")
app.add_typer(terminology_app, name="terminology", help="Terminology content: load LOINC, SNOMED CT, RxNorm, ICD-10-CM.")


@app.callback()
def main() -> None:
    """Ficus: an HL7 FHIR R4 server."""


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8080, help="TCP port to listen on."),
    workers: int = typer.Option(
        1, help="Server processes on one database: on PostgreSQL one per core; on SQLite they share the file "
        "(reads in parallel, writes one at a time across processes), so 1 unless the load is mostly reads.",
    ),
) -> None:
    """Start the FHIR server (base URL http://HOST:PORT/fhir)."""
    import uvicorn

    from ficus.config import Settings

    settings = Settings.from_environment(host, port)
    os.environ.setdefault("FICUS_BASE_URL", settings.base_url)
    typer.echo(f"Ficus FHIR R4 server at {settings.base_url} (database {_redacted(settings.database_url)})")
    uvicorn.run(
        "ficus.app:create_app", factory=True, host=host, port=port, workers=workers,
        log_level="info", access_log=False,
    )


@app.command()
def reindex(
    resource_type: str = typer.Option(None, "--type", help="Only resources of this type (default: all)."),
    batch: int = typer.Option(500, help="Resources per transaction."),
) -> None:
    """Rebuild the search indexes with the current SearchParameters, stored ones included.

    Run it after storing SearchParameter resources or upgrading Ficus. Servers that are running
    take newly stored SearchParameters up when they restart or run $reindex themselves.
    """
    from ficus.config import Settings
    from ficus.spec import definitions
    from ficus.store.database import open_database
    from ficus.store.repository import Repository

    settings = Settings.from_environment()
    database = open_database(settings.database_url)
    try:
        repository = Repository(database, definitions(), settings.base_url)
        if resource_type and not repository.definitions.is_resource_type(resource_type):
            raise typer.BadParameter(f"'{resource_type}' is not a FHIR R4 resource type", param_hint="--type")
        count = repository.reindex(resource_type or None, batch, progress=lambda done: typer.echo(f"  {done} ...", err=True))
        stored = len(repository.definitions.stored_parameters)
        typer.echo(f"Reindexed {count} resources ({stored} stored SearchParameters) in {_redacted(settings.database_url)}")
    finally:
        database.close()


def _redacted(url: str) -> str:
    """The database URL without its password, fit for logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, location = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{location}" if ":" in credentials else url
    return url


if __name__ == "__main__":
    app()
