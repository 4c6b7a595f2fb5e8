"""A durable cursor over the outbox: each named consumer handles every committed change once,
in commit order, in the same transaction that moves its cursor, shared safely by processes.

On PostgreSQL, outbox seqs are taken before commit, so a seq can become visible after a higher
one. The cursor never passes a missing seq until every transaction that could still hold it has
ended (a transaction id taken when the gap is seen, compared later with the snapshot's xmin);
a seq still missing then was rolled back. SQLite serialises writers, so its seqs commit in
order and a missing one was never committed. Processes take turns on a cursor with an advisory
lock, so one that finds it busy moves on instead of waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ficus.fhirtime import now_micros
from ficus.store.database import Cursor, Database

@dataclass(frozen=True)
class OutboxEvent:
    """One committed change: `action` is the interaction's method (POST, PUT, DELETE)."""

    seq: int
    rid: int
    res_type: str
    res_id: str
    version: int
    action: str
    created: int

    @property
    def reference(self) -> str:
        return f"{self.res_type}/{self.res_id}/_history/{self.version}"


Handler = Callable[[Cursor, list[OutboxEvent]], None]


class OutboxConsumer:
    """The outbox as seen by one consumer `name`; `consume` hands out the next batch of events."""

    def __init__(self, database: Database, name: str, batch: int = 200) -> None:
        self.database = database
        self.name = name
        self.batch = batch
        self._postgres = database.dialect == "postgresql"

    def register(self) -> int:
        """Create the cursor, at the current end of the outbox, if it does not exist; returns its position."""
        with self.database.session(write=True) as tx:
            return self.hold(tx)

    def hold(self, tx: Cursor) -> int:
        """The cursor's position (created at the end of the outbox if missing), held until `tx`
        ends: this consumer reads no events meanwhile, so what `tx` commits is in effect for
        every batch it reads after."""
        if self._postgres:
            tx.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (self._lock_key,))
        tx.execute(
            "INSERT INTO outbox_consumer (name, position, gap_horizon, updated) VALUES (?, ?, NULL, ?) "
            "ON CONFLICT (name) DO NOTHING",
            (self.name, latest_seq(tx), now_micros()),
        )
        return tx.execute("SELECT position FROM outbox_consumer WHERE name = ?", (self.name,)).fetchone()[0]

    @property
    def _lock_key(self) -> str:
        return f"ficus-outbox-consumer:{self.name}"

    def position(self) -> int | None:
        with self.database.session() as tx:
            row = tx.execute("SELECT position FROM outbox_consumer WHERE name = ?", (self.name,)).fetchone()
        return row[0] if row else None

    def skip_to(self, seq: int) -> None:
        """Move the cursor forward to `seq` (never back): events up to it concern nobody."""
        with self.database.session() as tx:
            row = tx.execute("SELECT position FROM outbox_consumer WHERE name = ?", (self.name,)).fetchone()
        if row is None or row[0] >= seq:
            return
        with self.database.session(write=True) as tx:
            tx.execute(
                "UPDATE outbox_consumer SET position = ?, gap_horizon = NULL, updated = ? WHERE name = ? AND position < ?",
                (seq, now_micros(), self.name, seq),
            )

    def pending(self) -> bool:
        """Whether events after the cursor are visible (a cheap read, no lock)."""
        with self.database.session() as tx:
            row = tx.execute(
                "SELECT 1 FROM outbox WHERE seq > (SELECT position FROM outbox_consumer WHERE name = ?) LIMIT 1",
                (self.name,),
            ).fetchone()
        return row is not None

    def consume(self, handle: Handler) -> int | None:
        """Pass the next events to `handle(tx, events)` and move the cursor past them, in one
        transaction: if `handle` raises, neither its writes nor the move happen. Returns how many
        events were handled, or None while another process holds this consumer's cursor."""
        with self.database.session(write=True) as tx:
            if self._postgres and not tx.execute(
                "SELECT pg_try_advisory_xact_lock(hashtextextended(?, 0))", (self._lock_key,)
            ).fetchone()[0]:
                return None
            row = tx.execute("SELECT position, gap_horizon FROM outbox_consumer WHERE name = ?", (self.name,)).fetchone()
            if row is None:
                return None
            position, horizon = row
            oldest_running = self._oldest_running(tx) if self._postgres and horizon is not None else None
            events = self._read(tx, position)
            ready, gap = _contiguous(position, events)
            if gap and not ready:  # the seq right after the cursor is missing, later ones are visible
                if not self._postgres or (oldest_running is not None and oldest_running >= horizon):
                    ready = _contiguous(events[0].seq - 1, events)[0]  # the missing seqs will never commit
                    horizon = None
                elif horizon is None:
                    # a transaction id taken now is newer than that of any transaction that could hold
                    # the missing seq; once every older one has ended, the seq is gone for good
                    horizon = tx.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()[0]
            if ready:
                handle(tx, ready)
                position, horizon = ready[-1].seq, None
            tx.execute(
                "UPDATE outbox_consumer SET position = ?, gap_horizon = ?, updated = ? WHERE name = ?",
                (position, horizon, now_micros(), self.name),
            )
            return len(ready)

    def _read(self, tx: Cursor, position: int) -> list[OutboxEvent]:
        rows = tx.execute(
            "SELECT seq, rid, res_type, res_id, version, action, created FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (position, self.batch),
        ).fetchall()
        return [OutboxEvent(*row) for row in rows]

    @staticmethod
    def _oldest_running(tx: Cursor) -> int:
        """The snapshot's xmin: every transaction with a lower id has ended."""
        return tx.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").fetchone()[0]


def _contiguous(position: int, events: list[OutboxEvent]) -> tuple[list[OutboxEvent], bool]:
    """The events that follow `position` without a missing seq, and whether a later one is visible."""
    ready = []
    expected = position + 1
    for event in events:
        if event.seq != expected:
            return ready, True
        ready.append(event)
        expected += 1
    return ready, False


def latest_seq(tx: Cursor) -> int:
    """The highest outbox seq committed so far (0 for an empty outbox)."""
    return tx.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()[0]
