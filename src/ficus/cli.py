"""The `ficus` command."""

from __future__ import annotations

import os

import typer

app = typer.Typer(help="Ficus: an HL7 FHIR R4 server.", no_args_is_help=True, add_completion=False)


@app.callback()
def main() -> None:
    """Ficus: an HL7 FHIR R4 server."""


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8080, help="TCP port to listen on."),
    workers: int = typer.Option(1, help="Worker processes (PostgreSQL scales out; keep 1 on SQLite)."),
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
