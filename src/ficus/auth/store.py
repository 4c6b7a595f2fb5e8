"""The auth tables (migration 0006): every piece of authorization state lives in the database.

Several Ficus processes share one PostgreSQL, so nothing here is kept in memory between
requests: a code used in one process is used in all of them, a revoked token is revoked
everywhere at once. One-shot transitions (use a code, rotate a refresh token, record a `jti`)
are single conditional statements with `RETURNING`, so two processes racing cannot both win.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ficus.auth.models import AuthorizationCode, Client, Token, User
from ficus.fhirtime import now_micros
from ficus.store.database import Database

_CLIENT_COLUMNS = (
    "client_id, name, kind, redirect_uris, grant_types, scope, secret_hash, jwks, jwks_url, can_introspect, active, created"
)
_USER_COLUMNS = "username, password_hash, fhir_user, display_name, active, created"
_CODE_COLUMNS = (
    "code_hash, grant_id, client_id, username, redirect_uri, scope, code_challenge, code_challenge_method, nonce, "
    "auth_time, context, used, created, expires"
)
_TOKEN_COLUMNS = "token_hash, kind, grant_id, client_id, username, scope, context, issued, expires, revoked, rotated"
_REQUEST_COLUMNS = (
    "request_hash, browser_hash, client_id, params, scope, username, auth_time, patient, encounter, launch_bound, created, expires"
)
ALL_TABLES = ("auth_client", "auth_user", "auth_key", "auth_launch", "auth_request", "auth_code", "auth_token", "auth_jti")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private_jwk: dict
    created: int
    retired: int | None


@dataclass(frozen=True)
class LaunchContext:
    client_id: str | None
    patient: str | None
    encounter: str | None
    expires: int


@dataclass
class PendingRequest:
    """An authorization request waiting for login, a patient choice and consent."""

    request_hash: str
    browser_hash: str
    client_id: str
    params: dict[str, str]
    scope: str
    username: str | None
    auth_time: int | None
    patient: str | None
    encounter: str | None
    launch_bound: bool
    created: int
    expires: int


class AuthStore:
    """Typed access to the auth tables of one database."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # -- clients ------------------------------------------------------------------------------

    def add_client(self, client: Client) -> None:
        with self.database.session(write=True) as tx:
            tx.execute(
                f"INSERT INTO auth_client ({_CLIENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    client.client_id, client.name, client.kind, json.dumps(list(client.redirect_uris)),
                    json.dumps(list(client.grant_types)), client.scope, client.secret_hash,
                    json.dumps(client.jwks) if client.jwks is not None else None, client.jwks_url,
                    client.can_introspect, client.active, client.created or now_micros(),
                ),
            )

    def client(self, client_id: str) -> Client | None:
        with self.database.session() as tx:
            row = tx.execute(f"SELECT {_CLIENT_COLUMNS} FROM auth_client WHERE client_id = ?", (client_id,)).fetchone()
        return _client(row) if row else None

    def clients(self) -> list[Client]:
        with self.database.session() as tx:
            rows = tx.execute(f"SELECT {_CLIENT_COLUMNS} FROM auth_client ORDER BY client_id").fetchall()
        return [_client(row) for row in rows]

    def update_client(self, client_id: str, **changes: Any) -> bool:
        columns = {
            "secret_hash": lambda v: v, "scope": lambda v: v, "active": bool, "jwks_url": lambda v: v,
            "jwks": lambda v: json.dumps(v) if v is not None else None,
            "redirect_uris": lambda v: json.dumps(list(v)), "grant_types": lambda v: json.dumps(list(v)),
            "can_introspect": bool, "name": lambda v: v,
        }
        unknown = set(changes) - set(columns)
        if unknown:
            raise ValueError(f"Unknown client fields: {sorted(unknown)}")
        if not changes:
            return self.client(client_id) is not None
        assignments = ", ".join(f"{name} = ?" for name in changes)
        values = [columns[name](value) for name, value in changes.items()]
        with self.database.session(write=True) as tx:
            row = tx.execute(
                f"UPDATE auth_client SET {assignments} WHERE client_id = ? RETURNING client_id", (*values, client_id)
            ).fetchone()
        return row is not None

    def revoke_client_tokens(self, client_id: str) -> None:
        with self.database.session(write=True) as tx:
            tx.execute("UPDATE auth_token SET revoked = ? WHERE client_id = ?", (True, client_id))

    def remove_client(self, client_id: str) -> bool:
        with self.database.session(write=True) as tx:
            tx.execute("UPDATE auth_token SET revoked = ? WHERE client_id = ?", (True, client_id))
            tx.execute("DELETE FROM auth_code WHERE client_id = ?", (client_id,))
            row = tx.execute("DELETE FROM auth_client WHERE client_id = ? RETURNING client_id", (client_id,)).fetchone()
        return row is not None

    # -- users --------------------------------------------------------------------------------

    def add_user(self, user: User) -> None:
        with self.database.session(write=True) as tx:
            tx.execute(
                f"INSERT INTO auth_user ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (user.username, user.password_hash, user.fhir_user, user.display_name, user.active, user.created or now_micros()),
            )

    def user(self, username: str) -> User | None:
        with self.database.session() as tx:
            row = tx.execute(f"SELECT {_USER_COLUMNS} FROM auth_user WHERE username = ?", (username,)).fetchone()
        return _user(row) if row else None

    def users(self) -> list[User]:
        with self.database.session() as tx:
            rows = tx.execute(f"SELECT {_USER_COLUMNS} FROM auth_user ORDER BY username").fetchall()
        return [_user(row) for row in rows]

    def update_user(self, username: str, **changes: Any) -> bool:
        allowed = {"password_hash", "fhir_user", "display_name", "active"}
        if set(changes) - allowed:
            raise ValueError(f"Unknown user fields: {sorted(set(changes) - allowed)}")
        if not changes:
            return self.user(username) is not None
        assignments = ", ".join(f"{name} = ?" for name in changes)
        values = [bool(v) if name == "active" else v for name, v in changes.items()]
        with self.database.session(write=True) as tx:
            row = tx.execute(
                f"UPDATE auth_user SET {assignments} WHERE username = ? RETURNING username", (*values, username)
            ).fetchone()
            if row is not None and ("password_hash" in changes or changes.get("active") is False):
                tx.execute("UPDATE auth_token SET revoked = ? WHERE username = ?", (True, username))
        return row is not None

    def remove_user(self, username: str) -> bool:
        with self.database.session(write=True) as tx:
            tx.execute("UPDATE auth_token SET revoked = ? WHERE username = ?", (True, username))
            row = tx.execute("DELETE FROM auth_user WHERE username = ? RETURNING username", (username,)).fetchone()
        return row is not None

    # -- signing keys -------------------------------------------------------------------------

    def signing_keys(self) -> list[SigningKey]:
        """All stored keys, newest first."""
        with self.database.session() as tx:
            rows = tx.execute("SELECT kid, alg, private_jwk, created, retired FROM auth_key ORDER BY created DESC, kid").fetchall()
        return [SigningKey(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]

    def add_key(self, key: SigningKey, retire_others: bool) -> None:
        """Store a key; with `retire_others` it becomes the only signing key (rotation)."""
        with self.database.session(write=True) as tx:
            self.database.lock(tx, "ficus-auth-signing-key")
            if retire_others:
                tx.execute("UPDATE auth_key SET retired = ? WHERE retired IS NULL", (key.created,))
            elif tx.execute("SELECT kid FROM auth_key WHERE retired IS NULL").fetchone():
                return  # another process made the first key meanwhile
            tx.execute(
                "INSERT INTO auth_key (kid, alg, private_jwk, created, retired) VALUES (?, ?, ?, ?, ?)",
                (key.kid, key.alg, json.dumps(key.private_jwk), key.created, None),
            )

    def remove_keys_retired_before(self, cutoff: int) -> list[str]:
        with self.database.session(write=True) as tx:
            rows = tx.execute("DELETE FROM auth_key WHERE retired IS NOT NULL AND retired < ? RETURNING kid", (cutoff,)).fetchall()
        return [row[0] for row in rows]

    # -- EHR launch contexts ------------------------------------------------------------------

    def add_launch(self, launch_hash: str, context: LaunchContext) -> None:
        with self.database.session(write=True) as tx:
            tx.execute(
                "INSERT INTO auth_launch (launch_hash, client_id, patient, encounter, created, expires) VALUES (?, ?, ?, ?, ?, ?)",
                (launch_hash, context.client_id, context.patient, context.encounter, now_micros(), context.expires),
            )

    def launch(self, launch_hash: str) -> LaunchContext | None:
        with self.database.session() as tx:
            row = tx.execute(
                "SELECT client_id, patient, encounter, expires FROM auth_launch WHERE launch_hash = ? AND expires > ?",
                (launch_hash, now_micros()),
            ).fetchone()
        return LaunchContext(*row) if row else None

    # -- pending authorization requests -------------------------------------------------------

    def add_request(self, request: PendingRequest) -> None:
        with self.database.session(write=True) as tx:
            tx.execute(
                f"INSERT INTO auth_request ({_REQUEST_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request.request_hash, request.browser_hash, request.client_id, json.dumps(request.params),
                    request.scope, request.username, request.auth_time, request.patient, request.encounter,
                    request.launch_bound, request.created, request.expires,
                ),
            )

    def request(self, request_hash: str) -> PendingRequest | None:
        with self.database.session() as tx:
            row = tx.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM auth_request WHERE request_hash = ? AND expires > ?",
                (request_hash, now_micros()),
            ).fetchone()
        if row is None:
            return None
        return PendingRequest(
            row[0], row[1], row[2], json.loads(row[3]), row[4], row[5], row[6], row[7], row[8], bool(row[9]), row[10], row[11],
        )

    def update_request(self, request_hash: str, **changes: Any) -> None:
        allowed = {"username", "auth_time", "patient", "encounter"}
        if set(changes) - allowed:
            raise ValueError(f"Unknown request fields: {sorted(set(changes) - allowed)}")
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with self.database.session(write=True) as tx:
            tx.execute(f"UPDATE auth_request SET {assignments} WHERE request_hash = ?", (*changes.values(), request_hash))

    def finish_request(self, request_hash: str) -> bool:
        """Remove a pending request; False when another submission already finished it."""
        with self.database.session(write=True) as tx:
            row = tx.execute("DELETE FROM auth_request WHERE request_hash = ? RETURNING request_hash", (request_hash,)).fetchone()
        return row is not None

    # -- authorization codes ------------------------------------------------------------------

    def add_code(self, code: AuthorizationCode) -> None:
        with self.database.session(write=True) as tx:
            tx.execute(
                f"INSERT INTO auth_code ({_CODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    code.code_hash, code.grant_id, code.client_id, code.username, code.redirect_uri, code.scope,
                    code.code_challenge, code.code_challenge_method, code.nonce, code.auth_time,
                    json.dumps(code.context), False, code.created or now_micros(), code.expires,
                ),
            )

    def code(self, code_hash: str) -> AuthorizationCode | None:
        with self.database.session() as tx:
            row = tx.execute(f"SELECT {_CODE_COLUMNS} FROM auth_code WHERE code_hash = ?", (code_hash,)).fetchone()
        if row is None:
            return None
        return AuthorizationCode(*row[:10], json.loads(row[10]), bool(row[11]), row[12], row[13])

    def use_code(self, code_hash: str) -> bool:
        """Mark a code used; False if it already was (a replay)."""
        with self.database.session(write=True) as tx:
            row = tx.execute(
                "UPDATE auth_code SET used = ? WHERE code_hash = ? AND used = ? RETURNING code_hash", (True, code_hash, False)
            ).fetchone()
        return row is not None

    def nonce_used(self, client_id: str, nonce: str) -> bool:
        with self.database.session() as tx:
            row = tx.execute("SELECT 1 FROM auth_code WHERE client_id = ? AND nonce = ?", (client_id, nonce)).fetchone()
        return row is not None

    # -- tokens -------------------------------------------------------------------------------

    def add_tokens(self, tokens: Iterable[Token]) -> None:
        rows = [
            (t.token_hash, t.kind, t.grant_id, t.client_id, t.username, t.scope, json.dumps(t.context), t.issued, t.expires, False, False)
            for t in tokens
        ]
        with self.database.session(write=True) as tx:
            tx.executemany(f"INSERT INTO auth_token ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def token(self, token_hash: str, kind: str | None = None) -> Token | None:
        with self.database.session() as tx:
            row = tx.execute(f"SELECT {_TOKEN_COLUMNS} FROM auth_token WHERE token_hash = ?", (token_hash,)).fetchone()
        if row is None or (kind is not None and row[1] != kind):
            return None
        return Token(*row[:6], json.loads(row[6]), row[7], row[8], bool(row[9]), bool(row[10]))

    def rotate_refresh_token(self, token_hash: str) -> bool:
        """Retire a refresh token that is being exchanged; False if it was already used."""
        with self.database.session(write=True) as tx:
            row = tx.execute(
                "UPDATE auth_token SET revoked = ?, rotated = ? WHERE token_hash = ? AND revoked = ? RETURNING token_hash",
                (True, True, token_hash, False),
            ).fetchone()
        return row is not None

    def revoke_token(self, token_hash: str) -> None:
        with self.database.session(write=True) as tx:
            tx.execute("UPDATE auth_token SET revoked = ? WHERE token_hash = ?", (True, token_hash))

    def revoke_grant(self, grant_id: str) -> None:
        """Revoke every token issued from one authorization (code reuse, refresh reuse, revocation)."""
        with self.database.session(write=True) as tx:
            tx.execute("UPDATE auth_token SET revoked = ? WHERE grant_id = ?", (True, grant_id))

    # -- client assertion ids -----------------------------------------------------------------

    def remember_jti(self, client_id: str, jti: str, expires: int) -> bool:
        """Record an assertion's `jti`; False when the client used it before (a replay)."""
        now = now_micros()
        with self.database.session(write=True) as tx:
            tx.execute("DELETE FROM auth_jti WHERE client_id = ? AND expires < ?", (client_id, now))
            row = tx.execute(
                "INSERT INTO auth_jti (client_id, jti, expires) VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING jti",
                (client_id, jti, expires),
            ).fetchone()
        return row is not None

    # -- housekeeping -------------------------------------------------------------------------

    def purge_expired(self, grace: int = 24 * 3600 * 1_000_000) -> int:
        """Delete codes, requests, launches, assertion ids and tokens that expired (tokens after `grace`)."""
        now = now_micros()
        removed = 0
        with self.database.session(write=True) as tx:
            for table, cutoff in (
                ("auth_code", now), ("auth_request", now), ("auth_launch", now), ("auth_jti", now), ("auth_token", now - grace),
            ):
                removed += len(tx.execute(f"DELETE FROM {table} WHERE expires < ? RETURNING 1", (cutoff,)).fetchall())
        return removed


def _client(row: Any) -> Client:
    return Client(
        client_id=row[0], name=row[1], kind=row[2], redirect_uris=tuple(json.loads(row[3])),
        grant_types=tuple(json.loads(row[4])), scope=row[5], secret_hash=row[6],
        jwks=json.loads(row[7]) if row[7] else None, jwks_url=row[8], can_introspect=bool(row[9]),
        active=bool(row[10]), created=row[11],
    )


def _user(row: Any) -> User:
    return User(row[0], row[1], row[2], row[3], bool(row[4]), row[5])
