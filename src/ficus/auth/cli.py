"""`ficus auth ...`: register clients and users, rotate signing keys, create EHR launches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ficus.auth.admin import AdminError, AuthAdmin
from ficus.auth.models import CLIENT_KINDS

auth_app = typer.Typer(
    help="The SMART on FHIR authorization server: clients, users, signing keys, EHR launches.",
    no_args_is_help=True, add_completion=False,
)
clients_app = typer.Typer(help="Registered client applications.", no_args_is_help=True, add_completion=False)
users_app = typer.Typer(help="Users who sign in, and their fhirUser.", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="The keys that sign id tokens (published at /auth/jwks).", no_args_is_help=True, add_completion=False)
auth_app.add_typer(clients_app, name="clients")
auth_app.add_typer(users_app, name="users")
auth_app.add_typer(keys_app, name="keys")

DATABASE_HELP = "Database URL (default: FICUS_DATABASE_URL)."


@contextmanager
def _admin(database_url: str | None) -> Iterator[AuthAdmin]:
    from ficus.config import Settings
    from ficus.store.database import open_database

    database = open_database(database_url or Settings.from_environment().database_url)
    try:
        yield AuthAdmin(database)
    except AdminError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(2) from None
    finally:
        database.close()


def _echo_json(value: object) -> None:
    typer.echo(json.dumps(value, indent=2))


def _when(micros: int | None) -> str | None:
    return datetime.fromtimestamp(micros / 1_000_000, UTC).isoformat(timespec="seconds") if micros else None


# -- clients ----------------------------------------------------------------------------------

@clients_app.command("add")
def clients_add(
    name: str = typer.Argument(..., help="A name users see on the consent page."),
    kind: str = typer.Option(..., help=f"One of: {', '.join(CLIENT_KINDS)}."),
    redirect_uri: Annotated[list[str] | None, typer.Option("--redirect-uri", help="Allowed redirect URI (repeat for several).")] = None,
    scope: str = typer.Option("", help="Scopes the client may be granted, space separated (e.g. 'launch/patient openid fhirUser patient/*.rs')."),
    grant: Annotated[list[str] | None, typer.Option("--grant", help="Grant type (repeat): authorization_code, refresh_token, client_credentials.")] = None,
    jwks: Annotated[Path | None, typer.Option(help="File with the client's public JWKS (confidential-asymmetric).")] = None,
    jwks_url: str | None = typer.Option(None, help="URL of the client's public JWKS (confidential-asymmetric)."),
    client_id: str | None = typer.Option(None, help="Use this client id instead of a generated one."),
    introspect: bool = typer.Option(False, help="May introspect every token (for resource servers)."),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Register a client application; prints its id (and secret, shown only now)."""
    keys = json.loads(jwks.read_text()) if jwks else None
    with _admin(database_url) as admin:
        registered = admin.register_client(
            name, kind, redirect_uri or [], scope, grant or None, keys, jwks_url, client_id, introspect,
        )
    shown = registered.client.public_view()
    if registered.secret:
        shown["client_secret"] = registered.secret
    _echo_json(shown)
    if registered.secret:
        typer.echo("Store the client secret now: Ficus keeps only its hash.", err=True)


@clients_app.command("list")
def clients_list(database_url: str | None = typer.Option(None, help=DATABASE_HELP)) -> None:
    """List registered clients."""
    with _admin(database_url) as admin:
        _echo_json([client.public_view() for client in admin.clients()])


@clients_app.command("secret")
def clients_secret(client_id: str, database_url: str | None = typer.Option(None, help=DATABASE_HELP)) -> None:
    """Give a confidential-symmetric client a new secret (the old one stops working)."""
    with _admin(database_url) as admin:
        secret = admin.new_client_secret(client_id)
    _echo_json({"client_id": client_id, "client_secret": secret})


@clients_app.command("keys")
def clients_keys(
    client_id: str,
    jwks: Annotated[Path | None, typer.Option(help="File with the client's public JWKS.")] = None,
    jwks_url: str | None = typer.Option(None, help="URL of the client's public JWKS."),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Replace a confidential-asymmetric client's keys."""
    with _admin(database_url) as admin:
        client = admin.set_client_keys(client_id, json.loads(jwks.read_text()) if jwks else None, jwks_url)
    _echo_json(client.public_view())


@clients_app.command("disable")
def clients_disable(client_id: str, database_url: str | None = typer.Option(None, help=DATABASE_HELP)) -> None:
    """Stop a client from authenticating and revoke its tokens."""
    with _admin(database_url) as admin:
        admin.set_client_active(client_id, False)
    typer.echo(f"Disabled {client_id}")


@clients_app.command("enable")
def clients_enable(client_id: str, database_url: str | None = typer.Option(None, help=DATABASE_HELP)) -> None:
    with _admin(database_url) as admin:
        admin.set_client_active(client_id, True)
    typer.echo(f"Enabled {client_id}")


@clients_app.command("remove")
def clients_remove(client_id: str, database_url: str | None = typer.Option(None, help=DATABASE_HELP)) -> None:
    """Delete a client and revoke its tokens."""
    with _admin(database_url) as admin:
        admin.remove_client(client_id)
    typer.echo(f"Removed {client_id}")


# -- users ------------------------------------------------------------------------------------

@users_app.command("add")
def users_add(
    username: str,
    fhir_user: str | None = typer.Option(None, help="The user's FHIR record, e.g. Practitioner/123 or Patient/abc."),
    name: str | None = typer.Option(None, help="Display name (the OpenID 'name' claim)."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True, help="Asked for when not given."),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Add a user who can sign in."""
    with _admin(database_url) as admin:
        admin.add_user(username, password, fhir_user, name)
    typer.echo(f"Added {username}" + (f" ({fhir_user})" if fhir_user else ""))


@users_app.command("list")
def users_list(database_url: str | None = typer.Option(None, help=DATABASE_HELP)) -> None:
    with _admin(database_url) as admin:
        _echo_json([
            {"username": u.username, "fhirUser": u.fhir_user, "name": u.display_name, "active": u.active}
            for u in admin.users()
        ])


@users_app.command("password")
def users_password(
    username: str,
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Set a new password (the user's tokens are revoked)."""
    with _admin(database_url) as admin:
        admin.set_password(username, password)
    typer.echo(f"Changed the password of {username}")


@users_app.command("fhir-user")
def users_fhir_user(
    username: str, fhir_user: str | None = typer.Argument(None, help="e.g. Practitioner/123; omit to clear."),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Set (or clear) the FHIR resource a user is."""
    with _admin(database_url) as admin:
        admin.set_fhir_user(username, fhir_user)
    typer.echo(f"{username}: fhirUser {fhir_user or '(none)'}")


@users_app.command("remove")
def users_remove(username: str, database_url: str | None = typer.Option(None, help=DATABASE_HELP)) -> None:
    """Delete a user and revoke their tokens."""
    with _admin(database_url) as admin:
        admin.remove_user(username)
    typer.echo(f"Removed {username}")


# -- keys -------------------------------------------------------------------------------------

@keys_app.command("list")
def keys_list(database_url: str | None = typer.Option(None, help=DATABASE_HELP)) -> None:
    """Signing keys, newest first (the one without 'retired' signs)."""
    with _admin(database_url) as admin:
        _echo_json([
            {"kid": k.kid, "alg": k.alg, "created": _when(k.created), "retired": _when(k.retired)}
            for k in admin.signing_keys()
        ])


@keys_app.command("rotate")
def keys_rotate(database_url: str | None = typer.Option(None, help=DATABASE_HELP)) -> None:
    """Start signing with a new key; older keys stay published until pruned."""
    with _admin(database_url) as admin:
        key = admin.rotate_key()
    typer.echo(f"Now signing with {key.kid}")


@keys_app.command("prune")
def keys_prune(
    days: float = typer.Option(7, help="Keep keys retired less than this many days ago."),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Forget keys retired long ago (tokens they signed no longer verify)."""
    with _admin(database_url) as admin:
        removed = admin.prune_keys(int(days * 86400))
    typer.echo(f"Removed {len(removed)} key(s)" + (f": {', '.join(removed)}" if removed else ""))


# -- launches and housekeeping ---------------------------------------------------------------

@auth_app.command("launch")
def launch(
    patient: str | None = typer.Option(None, help="Patient id of the launch context."),
    encounter: str | None = typer.Option(None, help="Encounter id of the launch context."),
    client_id: str | None = typer.Option(None, help="Only this client may use the launch."),
    minutes: int = typer.Option(60, help="How long the launch value stays valid."),
    database_url: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """Create an EHR launch context; prints the `launch` value to pass to the app."""
    with _admin(database_url) as admin:
        value = admin.create_launch(patient, encounter, client_id, minutes * 60)
    typer.echo(value)


@auth_app.command("purge")
def purge(database_url: str | None = typer.Option(None, help=DATABASE_HELP)) -> None:
    """Delete expired codes, requests, launches, assertion ids and tokens."""
    with _admin(database_url) as admin:
        removed = admin.purge()
    typer.echo(f"Removed {removed} expired row(s)")
