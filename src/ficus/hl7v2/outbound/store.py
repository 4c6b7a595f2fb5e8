"""Destinations and the outbound message queue (`hl7_destination`, `hl7_outbound`).

A message is `pending` until its destination accepts it (`sent`) or it is dead-lettered
(`failed`). Per destination, messages of one patient (one lane) go strictly in order: a message
is sendable only when no earlier message of its lane is still pending.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ficus.fhirtime import now_micros
from ficus.jobs.outbox import OutboxConsumer, latest_seq
from ficus.store.database import Cursor, Database

CONSUMER = "hl7v2-outbound"  # the outbox consumer that queues the messages
KINDS = ("adt", "oru")  # what a destination may take: ADT (Patient, Encounter), ORU (results)
PENDING, SENT, FAILED = "pending", "sent", "failed"
STATUSES = (PENDING, SENT, FAILED)

_DESTINATION_COLUMNS = (
    "name, host, port, kinds, sending_application, sending_facility, receiving_application, "
    "receiving_facility, since_seq, failures, retry_at, last_error, created"
)
_MESSAGE_COLUMNS = (
    "id, destination, patient, outbox_seq, source, kind, message_type, control_id, raw, status, "
    "attempts, next_attempt, ack_code, error, created, updated"
)
_INSERT_COLUMNS = (
    "destination", "patient", "outbox_seq", "source", "kind", "message_type", "control_id", "raw",
    "status", "attempts", "next_attempt", "created", "updated", "error",
)


@dataclass(frozen=True)
class Destination:
    name: str
    host: str
    port: int
    kinds: tuple[str, ...]
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    since_seq: int
    failures: int
    retry_at: int
    last_error: str | None
    created: int

    @classmethod
    def from_row(cls, row: Sequence) -> Destination:
        values = list(row)
        values[3] = tuple(kind for kind in values[3].split(",") if kind)
        return cls(*values)


@dataclass(frozen=True)
class OutboundMessage:
    id: int
    destination: str
    patient: str
    outbox_seq: int
    source: str
    kind: str
    message_type: str
    control_id: str
    raw: str
    status: str
    attempts: int
    next_attempt: int
    ack_code: str | None
    error: str | None
    created: int
    updated: int


class OutboundStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    # -- destinations ---------------------------------------------------------------------

    def add_destination(self, name: str, host: str, port: int, kinds: Sequence[str], sending_application: str,
                        sending_facility: str, receiving_application: str, receiving_facility: str) -> Destination:
        """A new destination; it receives the changes committed from now on. KeyError if the name is taken.

        The outbound consumer is held meanwhile (and created if no worker ever ran), so no batch
        it is reading can miss the new destination, nor a worker that starts later skip changes."""
        with self.database.session(write=True) as tx:
            if tx.execute("SELECT 1 FROM hl7_destination WHERE name = ?", (name,)).fetchone():
                raise KeyError(f"A destination named {name!r} exists already")
            OutboxConsumer(self.database, CONSUMER).hold(tx)
            since = latest_seq(tx)
            now = now_micros()
            tx.execute(
                f"INSERT INTO hl7_destination ({_DESTINATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, NULL, ?)",
                (name, host, port, ",".join(kinds), sending_application, sending_facility, receiving_application,
                 receiving_facility, since, now),
            )
            return self._destination(tx, name)  # type: ignore[return-value]

    def remove_destination(self, name: str) -> int | None:
        """Remove a destination and its queue; returns how many messages were still pending
        (None when there is no such destination)."""
        with self.database.session(write=True) as tx:
            if self._destination(tx, name) is None:
                return None
            pending = tx.execute(
                "SELECT COUNT(*) FROM hl7_outbound WHERE status = ? AND destination = ?", (PENDING, name)
            ).fetchone()[0]
            tx.execute("DELETE FROM hl7_outbound WHERE destination = ?", (name,))
            tx.execute("DELETE FROM hl7_destination WHERE name = ?", (name,))
            return pending

    def destinations(self, tx: Cursor | None = None) -> list[Destination]:
        if tx is not None:
            return [Destination.from_row(row) for row in tx.execute(f"SELECT {_DESTINATION_COLUMNS} FROM hl7_destination ORDER BY name").fetchall()]
        with self.database.session() as opened:
            return self.destinations(opened)

    def destination(self, name: str) -> Destination | None:
        with self.database.session() as tx:
            return self._destination(tx, name)

    @staticmethod
    def _destination(tx: Cursor, name: str) -> Destination | None:
        row = tx.execute(f"SELECT {_DESTINATION_COLUMNS} FROM hl7_destination WHERE name = ?", (name,)).fetchone()
        return Destination.from_row(row) if row else None

    def destination_failed(self, name: str, error: str, retry_at: int) -> None:
        """A transport failure: nothing goes to `name` before `retry_at`."""
        with self.database.session(write=True) as tx:
            tx.execute(
                "UPDATE hl7_destination SET failures = failures + 1, retry_at = ?, last_error = ? WHERE name = ?",
                (retry_at, error, name),
            )

    def destination_reached(self, name: str) -> None:
        with self.database.session(write=True) as tx:
            tx.execute(
                "UPDATE hl7_destination SET failures = 0, retry_at = 0, last_error = NULL WHERE name = ? AND failures > 0",
                (name,),
            )

    # -- the queue ------------------------------------------------------------------------

    def enqueue(self, tx: Cursor, rows: list[tuple]) -> None:
        """Insert messages (`_INSERT_COLUMNS` order) inside the caller's transaction."""
        if rows:
            self.database.insert_many(tx, "hl7_outbound", _INSERT_COLUMNS, rows)

    def due_destinations(self, now: int) -> list[str]:
        """Destinations that are not backing off and have a message due."""
        with self.database.session() as tx:
            rows = tx.execute(
                "SELECT d.name FROM hl7_destination d WHERE d.retry_at <= ? AND EXISTS ("
                "SELECT 1 FROM hl7_outbound o WHERE o.status = ? AND o.destination = d.name AND o.next_attempt <= ?)",
                (now, PENDING, now),
            ).fetchall()
        return [row[0] for row in rows]

    def next_due(self) -> int | None:
        """The earliest time (µs) at which some pending message may be sent."""
        with self.database.session() as tx:
            row = tx.execute(
                "SELECT MIN(CASE WHEN d.retry_at > o.next_attempt THEN d.retry_at ELSE o.next_attempt END) "
                "FROM hl7_outbound o JOIN hl7_destination d ON d.name = o.destination WHERE o.status = ?",
                (PENDING,),
            ).fetchone()
        return row[0] if row else None

    def sendable(self, destination: str, now: int, limit: int) -> list[OutboundMessage]:
        """Pending messages of `destination` in queue order whose lane has no earlier message
        still waiting for a retry: the next ones to send."""
        with self.database.session() as tx:
            rows = tx.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM hl7_outbound o WHERE o.status = ? AND o.destination = ? "
                "AND o.next_attempt <= ? AND NOT EXISTS (SELECT 1 FROM hl7_outbound e WHERE e.destination = o.destination "
                "AND e.patient = o.patient AND e.status = ? AND e.id < o.id AND e.next_attempt > ?) ORDER BY o.id LIMIT ?",
                (PENDING, destination, now, PENDING, now, limit),
            ).fetchall()
        return [OutboundMessage(*row) for row in rows]

    def record(self, message_id: int, status: str, ack_code: str | None, error: str | None,
               next_attempt: int | None = None, attempted: bool = True) -> None:
        """The outcome of one attempt: `status` sent/failed, or pending again at `next_attempt`."""
        with self.database.session(write=True) as tx:
            if self.database.dialect == "postgresql":
                # not waiting for the WAL flush: a database crash can forget the last few outcomes,
                # which only sends those messages again (same MSH-10); it never loses one
                tx.execute("SET LOCAL synchronous_commit = off")
            tx.execute(
                "UPDATE hl7_outbound SET status = ?, ack_code = ?, error = ?, attempts = attempts + ?, "
                "next_attempt = COALESCE(?, next_attempt), updated = ? WHERE id = ?",
                (status, ack_code, error, 1 if attempted else 0, next_attempt, now_micros(), message_id),
            )

    def requeue(self, message_ids: Sequence[int] = (), destination: str | None = None) -> int:
        """Send failed messages again (all failed ones of `destination`, or those ids)."""
        conditions, params = ["status = ?"], [FAILED]
        if message_ids:
            conditions.append(f"id IN ({', '.join('?' * len(message_ids))})")
            params += list(message_ids)
        if destination is not None:
            conditions.append("destination = ?")
            params.append(destination)
        now = now_micros()
        with self.database.session(write=True) as tx:
            rows = tx.execute(
                f"UPDATE hl7_outbound SET status = ?, attempts = 0, next_attempt = ?, updated = ? "
                f"WHERE {' AND '.join(conditions)} RETURNING id",
                (PENDING, now, now, *params),
            ).fetchall()
        return len(rows)

    def purge(self, before: int, statuses: Sequence[str] = (SENT,)) -> int:
        """Delete messages of `statuses` last updated before `before` (µs); returns how many."""
        marks = ", ".join("?" * len(statuses))
        with self.database.session(write=True) as tx:
            rows = tx.execute(
                f"DELETE FROM hl7_outbound WHERE status IN ({marks}) AND updated < ? RETURNING id", (*statuses, before)
            ).fetchall()
        return len(rows)

    # -- what an operator sees ------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        """{destination: {status: count}}."""
        with self.database.session() as tx:
            rows = tx.execute("SELECT destination, status, COUNT(*) FROM hl7_outbound GROUP BY destination, status").fetchall()
        found: dict[str, dict[str, int]] = {}
        for destination, status, count in rows:
            found.setdefault(destination, {})[status] = count
        return found

    def messages(self, destination: str | None = None, status: str | None = None, limit: int = 50,
                 after: int = 0) -> list[OutboundMessage]:
        conditions, params = ["id > ?"], [after]
        if destination is not None:
            conditions.append("destination = ?")
            params.append(destination)
        if status is not None:
            conditions.append("status = ?")
            params.append(status)
        with self.database.session() as tx:
            rows = tx.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM hl7_outbound WHERE {' AND '.join(conditions)} ORDER BY id LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [OutboundMessage(*row) for row in rows]

    def get(self, message_id: int) -> OutboundMessage | None:
        with self.database.session() as tx:
            row = tx.execute(f"SELECT {_MESSAGE_COLUMNS} FROM hl7_outbound WHERE id = ?", (message_id,)).fetchone()
        return OutboundMessage(*row) if row else None
