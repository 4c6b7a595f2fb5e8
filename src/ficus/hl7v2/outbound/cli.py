"""`ficus hl7 destinations ...`, `ficus hl7 outbound ...` and `ficus hl7 deliver`."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime
from typing import Annotated

import typer

from ficus.hl7v2.outbound.store import KINDS, STATUSES, OutboundStore

DATABASE_HELP = "Database URL (default: FICUS_DATABASE_URL)."

destinations_app = typer.Typer(help="MLLP destinations that receive ADT and ORU messages.", no_args_is_help=True)
outbound_app = typer.Typer(help="The outbound message queue: status, retry, purge.", no_args_is_help=True)


def _store(database_url: str | None) -> OutboundStore:
    from ficus.config import Settings
    from ficus.store.database import open_database

    return OutboundStore(open_database(database_url or Settings.from_environment().database_url))


@destinations_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the destination.")],
    address: Annotated[str, typer.Argument(help="HOST:PORT of its MLLP listener.")],
    kinds: str = typer.Option(",".join(KINDS), help="Message kinds it receives: adt, oru (comma-separated)."),
    receiving_application: str = typer.Option("", help="MSH-5 of its messages."),
    receiving_facility: str = typer.Option("", help="MSH-6 of its messages."),
    sending_application: str = typer.Option("FICUS", help="MSH-3 of its messages."),
    sending_facility: str = typer.Option("FICUS", help="MSH-4 of its messages."),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Add a destination; it receives every change committed from now on."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter("give HOST:PORT, e.g. 10.0.0.5:2575", param_hint="ADDRESS")
    chosen = tuple(dict.fromkeys(kind.strip().lower() for kind in kinds.split(",") if kind.strip()))
    unknown = [kind for kind in chosen if kind not in KINDS]
    if unknown or not chosen:
        raise typer.BadParameter(f"kinds are {', '.join(KINDS)}", param_hint="--kinds")
    store = _store(database_url)
    try:
        destination = store.add_destination(name, host, int(port), chosen, sending_application, sending_facility,
                                            receiving_application, receiving_facility)
    except KeyError as error:
        typer.echo(error.args[0], err=True)
        raise typer.Exit(1) from None
    finally:
        store.database.close()
    typer.echo(f"Added {destination.name}: {', '.join(destination.kinds).upper()} to {host}:{port}")


@destinations_app.command("list")
def list_destinations(database_url: str | None = typer.Option(None, help=DATABASE_HELP)) -> None:
    """List destinations with their queue counts and last transport error."""
    store = _store(database_url)
    try:
        destinations, counts = store.destinations(), store.counts()
    finally:
        store.database.close()
    if not destinations:
        typer.echo("No destinations")
    for d in destinations:
        found = counts.get(d.name, {})
        queue = "  ".join(f"{status}: {found.get(status, 0)}" for status in STATUSES)
        typer.echo(f"{d.name}  {d.host}:{d.port}  {','.join(d.kinds)}  "
                   f"{d.sending_application}|{d.sending_facility} -> {d.receiving_application}|{d.receiving_facility}  {queue}")
        if d.last_error:
            typer.echo(f"    failing {d.failures}x: {d.last_error}")


@destinations_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The destination to remove.")],
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Remove a destination and its queue (messages not yet sent are dropped)."""
    store = _store(database_url)
    try:
        pending = store.remove_destination(name)
    finally:
        store.database.close()
    if pending is None:
        typer.echo(f"No destination named {name!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"Removed {name} ({pending} unsent messages dropped)")


@outbound_app.command("status")
def status(
    message_id: Annotated[int | None, typer.Argument(help="Show this message in full.")] = None,
    destination: str | None = typer.Option(None, help="Only this destination's messages."),
    state: str | None = typer.Option(None, "--status", help="Only messages of this status."),
    limit: int = typer.Option(20, help="How many messages to list."),
    after: int = typer.Option(0, help="List messages after this id."),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Count outbound messages by destination and status and list them (or show one)."""
    from rich.console import Console

    if state is not None and state not in STATUSES:
        raise typer.BadParameter(f"status must be one of {', '.join(STATUSES)}", param_hint="--status")
    store = _store(database_url)
    try:
        if message_id is not None:
            found = store.get(message_id)
            if found is None:
                typer.echo(f"No outbound message #{message_id}", err=True)
                raise typer.Exit(1)
            details = {k: v for k, v in found.__dict__.items() if k != "raw"}
            details.update(created=_when(found.created), updated=_when(found.updated), next_attempt=_when(found.next_attempt))
            Console().print_json(json.dumps(details))
            typer.echo(found.raw.replace("\r", "\n"))
            return
        for name, counts in store.counts().items():
            typer.echo(f"{name}: " + "  ".join(f"{s}: {counts.get(s, 0)}" for s in STATUSES))
        for m in store.messages(destination, state, limit, after):
            outcome = f"{m.ack_code or '-'} {m.error or ''}".rstrip()
            typer.echo(f"#{m.id}  {m.destination}  {m.message_type or m.kind.upper()}  {m.source}  {m.status}  "
                       f"attempts {m.attempts}  {outcome}")
    finally:
        store.database.close()


@outbound_app.command("retry")
def retry(
    message_ids: Annotated[list[int] | None, typer.Argument(help="Ids of failed messages to send again.")] = None,
    destination: str | None = typer.Option(None, help="Every failed message of this destination."),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Queue failed (dead-lettered) messages again, e.g. after the consumer was fixed."""
    if not message_ids and not destination:
        raise typer.BadParameter("give message ids or --destination")
    store = _store(database_url)
    try:
        count = store.requeue(message_ids or (), destination)
    finally:
        store.database.close()
    typer.echo(f"Queued {count} messages again")


@outbound_app.command("purge")
def purge(
    days: float = typer.Option(30.0, help="Delete messages finished more than this many days ago."),
    failed: bool = typer.Option(False, "--failed", help="Also delete dead-lettered (failed) messages."),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Delete old delivered messages (and, with --failed, old dead letters); pending ones stay."""
    from ficus.fhirtime import now_micros
    from ficus.hl7v2.outbound.store import FAILED, SENT

    store = _store(database_url)
    try:
        count = store.purge(now_micros() - int(days * 86_400_000_000), (SENT, FAILED) if failed else (SENT,))
    finally:
        store.database.close()
    typer.echo(f"Deleted {count} messages")


def deliver(database_url: str | None = typer.Option(None, help=DATABASE_HELP)) -> None:
    """Deliver outbound messages without serving FHIR (as `ficus serve` does by default)."""
    import logging
    from dataclasses import replace

    from ficus.config import Settings
    from ficus.hl7v2.outbound.worker import OutboundSettings, OutboundWorker
    from ficus.spec import definitions
    from ficus.store.database import open_database
    from ficus.store.repository import Repository

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_environment()
    if database_url:
        settings = replace(settings, database_url=database_url)
    database = open_database(settings.database_url)
    worker = OutboundWorker(Repository(database, definitions(), settings.base_url), settings.base_url,
                            OutboundSettings.from_environment())

    async def run() -> None:
        stopping = asyncio.Event()
        # on SIGTERM, stop cleanly so the leases are released at once rather than left to expire
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
        await worker.start()
        typer.echo("Ficus HL7 v2 outbound delivery running")
        try:
            await stopping.wait()
        finally:
            await worker.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        typer.echo("Stopped")
    finally:
        database.close()


def _when(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
