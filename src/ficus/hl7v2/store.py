"""The message store: every v2 message, durably, with its status, outcome and produced resources.

A message is committed here before it is acknowledged. `record_many` stores the messages of
many connections in one transaction (a group commit) and recognises a resent message (same
sender, control id and content); `claim_next` gives a mapper the next messages it may apply
without overtaking an earlier message about the same patient (`lane`), under a lease so a
crashed mapper's messages are taken up again; `finish` records the outcome.
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
# how long a mapper holds what it claimed (it renews the lease of a batch that takes longer);
# the messages of a mapper that crashed wait this long before another takes them up
LEASE_SECONDS = 15.0
MERGE_LANE = "*"
ROWS_PER_INSERT = 200

_COLUMNS = (
    "id, sender, control_id, digest, message_type, version, raw, status, error, warnings, "
    "resources, attempts, received, updated, lease_until, lane"
)
_INSERTED = ("sender", "control_id", "digest", "message_type", "version", "raw", "status", "error", "lane",
             "attempts", "received", "updated")


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
    lane: str

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> StoredMessage:
        values = list(row)
        values[9] = json.loads(values[9]) if values[9] else []
        values[10] = json.loads(values[10]) if values[10] else []
        values[15] = values[15] or ""
        return cls(*values)


@dataclass(frozen=True)
class Envelope:
    """What the store keeps about a message as it arrives: `received`, or `rejected` with the
    reason when it could not be read."""

    sender: str
    control_id: str
    digest: str
    message_type: str
    version: str
    raw: str
    lane: str = ""
    status: str = RECEIVED
    error: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.sender, self.control_id, self.digest)


@dataclass(frozen=True)
class Finished:
    """The outcome of mapping one message, as the store records it."""

    message_id: int
    status: str
    error: str | None
    warnings: Sequence[str]
    resources: Sequence[str]


@dataclass(frozen=True)
class Receipt:
    """A message as the store holds it after `record_many`: new (`created`) or the one stored
    before with the same key, with that one's status and error."""

    id: int
    status: str
    error: str | None
    created: bool


class MessageStore:
    """The `hl7_message` table on a Ficus database (SQLite or PostgreSQL)."""

    def __init__(self, database: Database, lease_seconds: float = LEASE_SECONDS) -> None:
        self.database = database
        self.lease_seconds = lease_seconds

    @property
    def lease_micros(self) -> int:
        return int(self.lease_seconds * 1_000_000)

    def record_many(self, envelopes: Sequence[Envelope]) -> list[Receipt]:
        """Store the messages in one transaction, in order (ids follow arrival), skipping those
        already stored; one receipt per envelope."""
        now = now_micros()
        first: dict[tuple[str, str, str], Envelope] = {}
        for envelope in envelopes:
            first.setdefault(envelope.key, envelope)
        fresh = list(first.values())
        found: dict[tuple[str, str, str], Receipt] = {}
        with self.database.session(write=True) as tx:
            for start in range(0, len(fresh), ROWS_PER_INSERT):
                chunk = fresh[start : start + ROWS_PER_INSERT]
                values = ", ".join(["(" + ", ".join("?" * len(_INSERTED)) + ")"] * len(chunk))
                params = [value for envelope in chunk for value in (
                    envelope.sender, envelope.control_id, envelope.digest, envelope.message_type, envelope.version,
                    _text(envelope.raw), envelope.status, envelope.error, envelope.lane, 0, now, now)]
                rows = tx.execute(
                    f"INSERT INTO hl7_message ({', '.join(_INSERTED)}) VALUES {values} "
                    "ON CONFLICT (sender, control_id, digest) DO NOTHING RETURNING id, sender, control_id, digest, status",
                    params,
                ).fetchall()
                for row in rows:
                    found[(row[1], row[2], row[3])] = Receipt(row[0], row[4], None, True)
            for key in first:
                if key not in found:
                    row = tx.execute(
                        "SELECT id, status, error FROM hl7_message WHERE sender = ? AND control_id = ? AND digest = ?", key,
                    ).fetchone()
                    found[key] = Receipt(row[0], row[1], row[2], False)
        receipts = []
        for envelope in envelopes:
            receipt = found[envelope.key]
            if first[envelope.key] is not envelope:  # a second copy within the same batch
                receipt = Receipt(receipt.id, receipt.status, receipt.error, False)
            receipts.append(receipt)
        return receipts

    def record(self, envelope: Envelope) -> Receipt:
        return self.record_many([envelope])[0]

    def claim_next(self, limit: int) -> list[StoredMessage]:
        """Lease up to `limit` received messages, oldest first, that no other mapper's message
        must precede: a message waits while an earlier one of its lane (or an earlier merge) is
        leased elsewhere. Claims are serialised (an advisory lock on PostgreSQL, the write lock
        on SQLite) so two mappers cannot each take one message of a lane."""
        now = now_micros()
        with self.database.session(write=True) as tx:
            self.database.lock(tx, "ficus-hl7v2-claim")
            # the literal 'received' lets both databases use the partial index
            busy = tx.execute(
                "SELECT id, lane FROM hl7_message WHERE status = 'received' AND lease_until >= ?", (now,),
            ).fetchall()
            candidates = tx.execute(
                "SELECT id, lane FROM hl7_message WHERE status = 'received' AND (lease_until IS NULL OR lease_until < ?) "
                "ORDER BY id LIMIT ?", (now, max(limit * 4, 200)),
            ).fetchall()
            chosen = in_lane_order(busy, candidates, limit)
            if not chosen:
                return []
            marks = ", ".join("?" * len(chosen))
            rows = tx.execute(
                f"UPDATE hl7_message SET lease_until = ? WHERE id IN ({marks}) RETURNING {_COLUMNS}",
                (now + self.lease_micros, *chosen),
            ).fetchall()
        return sorted((StoredMessage.from_row(row) for row in rows), key=lambda message: message.id)

    def renew(self, message_ids: Sequence[int]) -> None:
        """Extend the lease of claimed messages not yet finished."""
        marks = ", ".join("?" * len(message_ids))
        with self.database.session(write=True) as tx:
            tx.execute(f"UPDATE hl7_message SET lease_until = ? WHERE status = 'received' AND id IN ({marks})",
                       (now_micros() + self.lease_micros, *message_ids))

    def claim(self, message_id: int, statuses: Sequence[str] = (RECEIVED,)) -> StoredMessage | None:
        """Lease the message for processing if it is in one of `statuses` and nobody holds it."""
        now = now_micros()
        marks = ", ".join("?" * len(statuses))
        with self.database.session(write=True) as tx:
            row = tx.execute(
                f"UPDATE hl7_message SET lease_until = ? WHERE id = ? AND status IN ({marks}) "
                f"AND (lease_until IS NULL OR lease_until < ?) RETURNING {_COLUMNS}",
                (now + self.lease_micros, message_id, *statuses, now),
            ).fetchone()
        return StoredMessage.from_row(row) if row else None

    def finish_many(self, outcomes: Sequence[Finished]) -> None:
        """Record the outcomes of mapping in one transaction and release the leases."""
        now = now_micros()
        with self.database.session(write=True) as tx:
            tx.executemany(
                "UPDATE hl7_message SET status = ?, error = ?, warnings = ?, resources = ?, "
                "attempts = attempts + 1, updated = ?, lease_until = NULL WHERE id = ?",
                [(o.status, o.error, json.dumps(list(o.warnings)) if o.warnings else None,
                  json.dumps(list(o.resources)) if o.resources else None, now, o.message_id) for o in outcomes],
            )

    def release(self, message_ids: Sequence[int], attempted: int, retry_seconds: float) -> None:
        """Give claimed messages back unmapped, to be claimed again; the one that was being
        mapped counts an attempt and waits `retry_seconds` (holding back its lane)."""
        marks = ", ".join("?" * len(message_ids))
        retry_at = now_micros() + int(retry_seconds * 1_000_000)
        with self.database.session(write=True) as tx:
            tx.execute(
                "UPDATE hl7_message SET lease_until = CASE WHEN id = ? THEN ? ELSE NULL END, "
                "attempts = attempts + (CASE WHEN id = ? THEN 1 ELSE 0 END) "
                f"WHERE status = 'received' AND id IN ({marks})", (attempted, retry_at, attempted, *message_ids),
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

    def counts(self) -> dict[str, int]:
        with self.database.session() as tx:
            rows = tx.execute("SELECT status, COUNT(*) FROM hl7_message GROUP BY status").fetchall()
        return {status: count for status, count in rows}


def in_lane_order(busy: Sequence[tuple[int, str | None]], candidates: Sequence[tuple[int, str | None]],
                  limit: int) -> list[int]:
    """The ids among `candidates` (id, lane; in id order) that may be applied now, given the
    messages `busy` elsewhere: not one whose lane has an earlier busy or held-back message, and
    nothing after a merge that has to wait, nor a merge after anything that has to wait."""
    first_busy: dict[str, int] = {}
    for message_id, lane in busy:
        key = lane or ""
        first_busy[key] = min(message_id, first_busy.get(key, message_id))
    earliest_busy = min(first_busy.values(), default=None)
    busy_merge = first_busy.get(MERGE_LANE)
    chosen: list[int] = []
    held: set[str] = set()
    for message_id, lane in candidates:
        key = lane or ""
        merge = key == MERGE_LANE
        waits = (key in held or first_busy.get(key, message_id) < message_id
                 or (busy_merge is not None and busy_merge < message_id)
                 or (merge and (bool(held) or (earliest_busy is not None and earliest_busy < message_id))))
        if waits:
            if merge:
                break
            held.add(key)
            continue
        chosen.append(message_id)
        if len(chosen) == limit:
            break
    return chosen


def _text(raw: str) -> str:
    """PostgreSQL TEXT cannot hold NUL characters; keep them visible instead."""
    return raw.replace("\x00", "\\x00")
