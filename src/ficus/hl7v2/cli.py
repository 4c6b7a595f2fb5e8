"""`ficus hl7 ...`: listen for, send, convert, inspect and replay HL7 v2 messages."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ficus import fhirjson
from ficus.hl7v2.errors import V2Error
from ficus.hl7v2.mapper import MAPPERS
from ficus.hl7v2.message import V2Message, normalise_text, split_messages
from ficus.hl7v2.outbound.cli import deliver, destinations_app, outbound_app
from ficus.hl7v2.store import LEASE_SECONDS, REPLAYED, STATUSES, MessageStore

if TYPE_CHECKING:
    from ficus.api.interactions import Interactions
    from ficus.hl7v2.mapper import Mapper
    from ficus.store.database import Database

hl7_app = typer.Typer(
    help="HL7 v2: an MLLP listener that maps messages to FHIR, and its message store.",
    no_args_is_help=True, add_completion=False,
)

DATABASE_HELP = "Database URL (default: FICUS_DATABASE_URL)."


def _interactions(database_url: str | None) -> tuple[Interactions, Database]:
    from ficus.api.local import local_interactions

    return local_interactions(database_url)


def _mapper(database_url: str | None, timezone_name: str = "UTC", lease_seconds: float = LEASE_SECONDS) -> Mapper:
    from ficus.hl7v2.mapper import Mapper
    from ficus.hl7v2.mapping import MappingOptions

    interactions, database = _interactions(database_url)
    return Mapper(interactions, MessageStore(database, lease_seconds), MappingOptions(timezone=timezone_name))


@hl7_app.command()
def listen(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(2575, help="TCP port (2575 is the registered MLLP port)."),
    encoding: str = typer.Option("utf-8", help="Character set of messages that do not declare one in MSH-18."),
    tz: str = typer.Option("UTC", "--timezone", help="Time zone of v2 times sent without an offset."),
    mappers: int = typer.Option(MAPPERS, help="Threads mapping stored messages to FHIR (0: another process maps)."),
    lease: float = typer.Option(LEASE_SECONDS, "--lease-seconds",
                                help="How long a mapper holds the messages it claimed; after a crash they wait this long."),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Receive messages over MLLP: store and acknowledge, then map to FHIR in the background."""
    import logging

    from ficus.hl7v2.intake import Intake
    from ficus.hl7v2.listener import Listener

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    mapper = _mapper(database_url, tz, lease)
    listener = Listener(Intake(mapper.store, encoding), mapper, host, port, mappers)
    typer.echo(f"Ficus HL7 v2 listener on {host}:{port} (MLLP)")
    try:
        asyncio.run(listener.serve_forever())
    except KeyboardInterrupt:
        typer.echo("Stopped")


@hl7_app.command("map")
def map_messages(
    tz: str = typer.Option("UTC", "--timezone", help="Time zone of v2 times sent without an offset."),
    mappers: int = typer.Option(MAPPERS, min=1, help="Mapper threads."),
    lease: float = typer.Option(LEASE_SECONDS, "--lease-seconds",
                                help="How long a mapper holds the messages it claimed; after a crash they wait this long."),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Map stored messages to FHIR without listening: beside listeners started with --mappers 0,
    or several, to map on more cores (messages about one patient still apply in order)."""
    import logging
    import threading

    from ficus.hl7v2.mapper import MapperThreads

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    threads = MapperThreads(_mapper(database_url, tz, lease), mappers)
    threads.start()
    typer.echo(f"Ficus HL7 v2 mapper ({mappers} threads)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        threads.stop()
        typer.echo("Stopped")


@hl7_app.command()
def send(
    files: Annotated[list[Path], typer.Argument(help="Files of one or more v2 messages each.", exists=True, dir_okay=False)],
    host: str = typer.Option("127.0.0.1", help="Listener host."),
    port: int = typer.Option(2575, help="Listener port."),
    encoding: str = typer.Option("utf-8", help="Character set to send in."),
    timeout: float = typer.Option(30.0, help="Seconds to wait for each ACK."),
) -> None:
    """Send messages over MLLP, one connection, in order, and print each ACK."""
    from ficus.hl7v2.mllp import exchange

    messages = [m for path in files for m in split_messages(path.read_text(encoding=encoding))]
    acks = asyncio.run(exchange(host, port, [m.encode(encoding) for m in messages], timeout))
    accepted = 0
    for ack in acks:
        text = ack.decode(encoding, "replace")
        typer.echo(text.replace("\r", "\n").strip() + "\n")
        accepted += "|AA|" in text or "|CA|" in text
    if accepted < len(acks):
        raise typer.Exit(1)


@hl7_app.command()
def convert(
    file: Annotated[Path, typer.Argument(help="A file of one or more v2 messages.", exists=True, dir_okay=False)],
    tz: str = typer.Option("UTC", "--timezone", help="Time zone of v2 times sent without an offset."),
    encoding: str = typer.Option("utf-8", help="Character set of the file."),
) -> None:
    """Print the FHIR transaction Bundle of each message; nothing is stored."""
    from ficus.hl7v2.mapping import MappingOptions, UnsupportedMessage
    from ficus.hl7v2.mapping import convert as to_fhir

    bundles = []
    for text in split_messages(file.read_text(encoding=encoding)):
        try:
            conversion = to_fhir(V2Message(normalise_text(text)), MappingOptions(timezone=tz))
        except UnsupportedMessage as error:
            typer.echo(f"Not mapped: {error}", err=True)
            raise typer.Exit(2) from None
        except V2Error as error:
            typer.echo(f"Cannot map: {error}", err=True)
            raise typer.Exit(1) from None
        for problem in conversion.problems:
            typer.echo(f"Warning: {problem.describe()}", err=True)
        bundles.append(conversion.bundle)
    output = bundles[0] if len(bundles) == 1 else bundles
    sys.stdout.write(fhirjson.encode_pretty(output).decode() + "\n")


@hl7_app.command()
def status(
    message_id: Annotated[int | None, typer.Argument(help="Show this message in full.")] = None,
    state: str | None = typer.Option(None, "--status", help="Only messages of this status."),
    limit: int = typer.Option(20, help="How many messages to list."),
    after: int = typer.Option(0, help="List messages after this id."),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Count messages by status and list them (or show one, with its raw text)."""
    if state is not None and state not in STATUSES:
        raise typer.BadParameter(f"status must be one of {', '.join(STATUSES)}", param_hint="--status")
    _, database = _interactions(database_url)
    try:
        _show(MessageStore(database), message_id, state, limit, after)
    finally:
        database.close()


def _show(store: MessageStore, message_id: int | None, state: str | None, limit: int, after: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if message_id is not None:
        found = store.get(message_id)
        if found is None:
            typer.echo(f"No message #{message_id}", err=True)
            raise typer.Exit(1)
        details = {k: v for k, v in found.__dict__.items() if k != "raw"}
        details["received"] = _when(found.received)
        details["updated"] = _when(found.updated)
        console.print_json(json.dumps(details))
        typer.echo(found.raw.replace("\r", "\n"))
        return
    counts = store.counts()
    typer.echo("  ".join(f"{name}: {counts.get(name, 0)}" for name in STATUSES))
    table = Table("id", "received", "sender", "control id", "type", "status", "resources / error")
    for message in store.messages(state, limit, after):
        outcome = message.error or f"{len(message.resources)} resources"
        table.add_row(str(message.id), _when(message.received), message.sender, message.control_id,
                      message.message_type, message.status, outcome)
    console.print(table)


@hl7_app.command()
def replay(
    message_ids: Annotated[list[int] | None, typer.Argument(help="Ids of messages to replay.")] = None,
    state: str | None = typer.Option(None, "--status", help="Replay every message of this status (e.g. failed)."),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Map and apply stored messages again, e.g. after a mapping fix; unchanged ones write nothing."""
    if not message_ids and not state:
        raise typer.BadParameter("give message ids or --status")
    mapper = _mapper(database_url)
    try:
        ids = list(message_ids or []) + (list(mapper.store.ids(state)) if state else [])
        failed = _replay(mapper, ids)
    finally:
        mapper.store.database.close()
    typer.echo(f"Replayed {len(ids) - failed} of {len(ids)} messages")
    if failed:
        raise typer.Exit(1)


def _replay(mapper: Mapper, ids: list[int]) -> int:
    """Replay each message, print its outcome; returns how many did not map."""
    failed = 0
    for message_id in ids:
        try:
            outcome = mapper.replay(message_id)
        except KeyError as error:
            typer.echo(str(error.args[0]), err=True)
            failed += 1
            continue
        failed += outcome.status != REPLAYED
        typer.echo(f"#{message_id}: {outcome.status} - {outcome.text}")
    return failed


def _when(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


hl7_app.add_typer(destinations_app, name="destinations")
hl7_app.add_typer(outbound_app, name="outbound")
hl7_app.command()(deliver)
