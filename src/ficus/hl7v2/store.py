"""The message store: every v2 message, durably, with its status, outcome and produced resources.

A message is committed here before it is acknowledged. `record` recognises a resent message
(same sender, control id and content) and returns the stored one instead; `claim` gives one
worker at a time the right to process a message (a lease, so a crashed worker's messages are
taken up again); `finish` records the outcome.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ficus.fhirtime import now_micros
from ficus.store.database import Database

RECEIVED, MAPPED, FAILED, UNSUPPORTED, REPLAYED, REJECTED = (
    "received", "mapped", "failed", "unsupported", "replayed", "rejected",
)
STATUSES = (RECEIVED, MAPPED, FAILED, UNSUPPORTED, REPLAYED, REJECTED)
LEASE_MICROS = 60 * 1_000_000

_COLUMNS = (
    "id, sender, control_id, digest, message_type, version, raw, status, error, warnings, "
    "resources, attempts, received, updated, lease_until"
)


@dataclass(frozen=True)
class StoredMessage:
    id: int
    sender: str
    control_id: str
    digest: str
    message_type: str
    version: str
    raw: str
    status: str
    error: str | None
    warnings: list[str]
    resources: list[str]
    attempts: int
    received: int
    updated: int
    lease_until: int | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> StoredMessage:
        values = list(row)
        values[9] = json.loads(values[9]) if values[9] else []
        values[10] = json.loads(values[10]) if values[10] else []
        return cls(*values)


@dataclass(frozen=True)
class Envelope:
    """What the store keeps about a message as it arrives."""

    sender: str
    control_id: str
    digest: str
    message_type: str
    version: str
    raw: str


class MessageStore:
    """The `hl7_message` table on a Ficus database (SQLite or PostgreSQL)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def record(self, envelope: Envelope, status: str = RECEIVED) -> tuple[StoredMessage, bool]:
        """Store a new message, leased to the caller, or find the one already stored with the
        same sender, control id and digest. Returns (message, created)."""
        now = now_micros()
        lease = now + LEASE_MICROS if status == RECEIVED else None
        with self.database.session(write=True) as tx:
            row = tx.execute(
                "INSERT INTO hl7_message (sender, control_id, digest, message_type, version, raw, status, "
                "attempts, received, updated, lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) "
                f"ON CONFLICT (sender, control_id, digest) DO NOTHING RETURNING {_COLUMNS}",
                (envelope.sender, envelope.control_id, envelope.digest, envelope.message_type,
                 envelope.version, _text(envelope.raw), status, now, now, lease),
            ).fetchone()
            if row is not None:
                return StoredMessage.from_row(row), True
            row = tx.execute(
                f"SELECT {_COLUMNS} FROM hl7_message WHERE sender = ? AND control_id = ? AND digest = ?",
                (envelope.sender, envelope.control_id, envelope.digest),
            ).fetchone()
        return StoredMessage.from_row(row), False

    def claim(self, message_id: int, statuses: Sequence[str] = (RECEIVED,)) -> StoredMessage | None:
        """Lease the message for processing if it is in one of `statuses` and nobody holds it."""
        now = now_micros()
        marks = ", ".join("?" * len(statuses))
        with self.database.session(write=True) as tx:
            row = tx.execute(
                f"UPDATE hl7_message SET lease_until = ? WHERE id = ? AND status IN ({marks}) "
                f"AND (lease_until IS NULL OR lease_until < ?) RETURNING {_COLUMNS}",
                (now + LEASE_MICROS, message_id, *statuses, now),
            ).fetchone()
        return StoredMessage.from_row(row) if row else None

    def finish(self, message_id: int, status: str, error: str | None = None,
               warnings: Sequence[str] = (), resources: Sequence[str] = ()) -> None:
        """Record the outcome of processing and release the lease."""
        with self.database.session(write=True) as tx:
            tx.execute(
                "UPDATE hl7_message SET status = ?, error = ?, warnings = ?, resources = ?, "
                "attempts = attempts + 1, updated = ?, lease_until = NULL WHERE id = ?",
                (status, error, json.dumps(list(warnings)) if warnings else None,
                 json.dumps(list(resources)) if resources else None, now_micros(), message_id),
            )

    def get(self, message_id: int) -> StoredMessage | None:
        with self.database.session() as tx:
            row = tx.execute(f"SELECT {_COLUMNS} FROM hl7_message WHERE id = ?", (message_id,)).fetchone()
        return StoredMessage.from_row(row) if row else None

    def messages(self, status: str | None = None, limit: int = 50, after: int = 0) -> list[StoredMessage]:
        """Messages in id order, optionally of one status, after id `after`."""
        where, params = "WHERE id > ?", [after]
        if status:
            where += " AND status = ?"
            params.append(status)
        with self.database.session() as tx:
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM hl7_message {where} ORDER BY id LIMIT ?", (*params, limit),
            ).fetchall()
        return [StoredMessage.from_row(row) for row in rows]

    def ids(self, status: str, batch: int = 500) -> Iterator[int]:
        """Every id of a status, in order, read in batches."""
        after = 0
        while True:
            found = [message.id for message in self.messages(status, batch, after)]
            yield from found
            if len(found) < batch:
                return
            after = found[-1]

    def stale(self, limit: int = 500) -> list[int]:
        """Messages received but never finished, whose lease has run out (a crash or restart)."""
        with self.database.session() as tx:
            rows = tx.execute(
                "SELECT id FROM hl7_message WHERE status = ? AND (lease_until IS NULL OR lease_until < ?) "
                "ORDER BY id LIMIT ?",
                (RECEIVED, now_micros(), limit),
            ).fetchall()
        return [row[0] for row in rows]

    def counts(self) -> dict[str, int]:
        with self.database.session() as tx:
            rows = tx.execute("SELECT status, COUNT(*) FROM hl7_message GROUP BY status").fetchall()
        return {status: count for status, count in rows}


def _text(raw: str) -> str:
    """PostgreSQL TEXT cannot hold NUL characters; keep them visible instead."""
    return raw.replace("\x00", "\\x00")
